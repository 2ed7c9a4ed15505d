"""Drive the agent's TCP API with the official Alibaba Cloud SDKs, unchanged but for the
endpoint and keys: `python drive.py HOST:PORT ACCESS_KEY_ID SECRET`. Prints one JSON object
per step (what the SDK gave back, or the error it raised) for tests/tests/sdk.rs to check."""
import json, sys

endpoint, key, secret = sys.argv[1], sys.argv[2], sys.argv[3]
host, port = endpoint.split(":")

def say(step, **what):
    print(json.dumps({"step": step, **what}), flush=True)

from alibabacloud_tea_openapi import models as open_api
from alibabacloud_vpc20160428 import models as vpc_models
from alibabacloud_vpc20160428.client import Client as VpcClient

def tea(signature_algorithm=None, secret=secret):
    config = open_api.Config(access_key_id=key, access_key_secret=secret, endpoint=endpoint, protocol="http", region_id="cn-hangzhou")
    if signature_algorithm:
        config.signature_algorithm = signature_algorithm
    return VpcClient(config)

# Tea, ACS3-HMAC-SHA256 (its default): a VPC.
made = tea().create_vpc(vpc_models.CreateVpcRequest(region_id="cn-hangzhou", cidr_block="10.0.0.0/16", vpc_name="sdk-vpc"))
say("tea-v3 CreateVpc", status=made.status_code, vpc_id=made.body.vpc_id, request_id=made.body.request_id)
vpc_id = made.body.vpc_id

# Tea, HMAC-SHA1 v1: a VSwitch in it.
made = tea("v2").create_vswitch(
    vpc_models.CreateVSwitchRequest(region_id="cn-hangzhou", vpc_id=vpc_id, cidr_block="10.0.1.0/24", zone_id="a", v_switch_name="sdk-sw", description="made by the Tea SDK")
)
say("tea-v1 CreateVSwitch", status=made.status_code, vswitch_id=made.body.v_switch_id)

# Classic SDK, HMAC-SHA1 v1: the VPCs, as raw JSON.
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException
from aliyunsdkvpc.request.v20160428.DescribeVpcsRequest import DescribeVpcsRequest
from aliyunsdkvpc.request.v20160428.DescribeVSwitchesRequest import DescribeVSwitchesRequest

def classic(request, secret=secret):
    request.set_endpoint(host)
    request.set_protocol_type("http")
    return json.loads(AcsClient(key, secret, "cn-hangzhou", port=int(port)).do_action_with_exception(request))

say("classic DescribeVpcs", body=classic(DescribeVpcsRequest()))
request = DescribeVSwitchesRequest()
request.set_VpcId(vpc_id)
say("classic DescribeVSwitches", body=classic(request))

# Tea reads listings in the API's nested form, a page at a time.
tea().create_vpc(vpc_models.CreateVpcRequest(region_id="cn-hangzhou", cidr_block="172.16.0.0/16", vpc_name="sdk-vpc-2"))
for number in [1, 2]:
    page = tea().describe_vpcs(vpc_models.DescribeVpcsRequest(region_id="cn-hangzhou", page_size=1, page_number=number)).body
    say(f"tea-v3 DescribeVpcs page {number}", total=page.total_count, page=page.page_number, size=page.page_size,
        vpcs=[{"id": v.vpc_id, "name": v.vpc_name, "vswitches": v.v_switch_ids.v_switch_id} for v in page.vpcs.vpc])

# Two ENIs through ECS's API (the classic SDK's CommonRequest), a custom route table bound to
# the VSwitch, and an ECMP entry over both with weights, listed back (Tea).
from aliyunsdkcore.request import CommonRequest

def ecs(action, **params):
    request = CommonRequest(domain=host, version="2014-05-26", action_name=action)
    request.set_method("POST")
    for name, value in params.items():
        request.add_query_param(name, value)
    return classic(request)

group = ecs("CreateSecurityGroup", VpcId=vpc_id, SecurityGroupName="sdk-sg")["SecurityGroupId"]
ecs("AuthorizeSecurityGroup", SecurityGroupId=group, IpProtocol="TCP", PortRange="22/22", SourceCidrIp="10.0.0.0/8", Policy="Accept")
rules = ecs("DescribeSecurityGroupAttribute", SecurityGroupId=group)["Permissions"]["Permission"]
say("ecs security group", rules=[{"protocol": r["IpProtocol"], "ports": r["PortRange"], "policy": r["Policy"]} for r in rules])
enis = [ecs("CreateNetworkInterface", VSwitchId=vsw, NetworkInterfaceName=f"nat{i}", PrimaryIpAddress=f"10.0.1.{10 + i}", SecurityGroupId=group)["NetworkInterfaceId"]
        for i, vsw in enumerate([made.body.v_switch_id] * 2)]
listed = ecs("DescribeNetworkInterfaces")["NetworkInterfaceSets"]["NetworkInterfaceSet"]
say("ecs network interfaces", groups=[e["SecurityGroupIds"]["SecurityGroupId"] for e in listed if e["NetworkInterfaceId"] in enis], group=group)
table = tea().create_route_table(vpc_models.CreateRouteTableRequest(region_id="cn-hangzhou", vpc_id=vpc_id, route_table_name="sdk-table")).body.route_table_id
tea().associate_route_table(vpc_models.AssociateRouteTableRequest(region_id="cn-hangzhou", route_table_id=table, v_switch_id=made.body.v_switch_id))
hops = [vpc_models.CreateRouteEntryRequestNextHopList(next_hop_type="Instance", next_hop_id=eni, weight=w) for eni, w in zip(enis, [100, 50])]
entry = tea().create_route_entry(vpc_models.CreateRouteEntryRequest(region_id="cn-hangzhou", route_table_id=table, destination_cidr_block="0.0.0.0/0", next_hop_list=hops))
listed = tea().describe_route_entry_list(vpc_models.DescribeRouteEntryListRequest(region_id="cn-hangzhou", route_table_id=table)).body
custom = [e for e in listed.route_entrys.route_entry if e.type == "Custom"]
say("tea ECMP route entry", entry=entry.body.route_entry_id, enis=enis,
    hops=[{"id": h.next_hop_id, "type": h.next_hop_type, "weight": h.weight} for e in custom for h in e.next_hops.next_hop])

# The entries a page of two at a time, by token, until none is left.
pages, token = [], None
while token != "":
    body = tea().describe_route_entry_list(vpc_models.DescribeRouteEntryListRequest(region_id="cn-hangzhou", route_table_id=table, max_result=2, next_token=token)).body
    pages.append([e.route_entry_id or e.destination_cidr_block for e in body.route_entrys.route_entry])
    token, total = body.next_token, body.total_count
    if len(pages) > 10:
        break
everything = tea().describe_route_entry_list(vpc_models.DescribeRouteEntryListRequest(region_id="cn-hangzhou", route_table_id=table, max_result=100)).body
say("tea route entries by token", pages=pages, total=total, all=[e.route_entry_id or e.destination_cidr_block for e in everything.route_entrys.route_entry])

# A dry run that would succeed answers DryRunOperation (and makes nothing).
from aliyunsdkvpc.request.v20160428.CreateVpcRequest import CreateVpcRequest
dry = CreateVpcRequest()
dry.set_CidrBlock("192.168.0.0/16")
dry.set_DryRun(True)
try:
    classic(dry)
    say("classic dry run", raised=None)
except (ClientException, ServerException) as e:
    say("classic dry run", raised=type(e).__name__, code=e.get_error_code())

# A wrong secret: each SDK raises the API's error.
try:
    tea(secret="not the secret").create_vpc(vpc_models.CreateVpcRequest(region_id="cn-hangzhou", cidr_block="10.1.0.0/16", vpc_name="refused"))
    say("tea-v3 wrong secret", raised=None)
except Exception as e:
    say("tea-v3 wrong secret", raised=type(e).__name__, code=getattr(e, "code", None), status=getattr(e, "statusCode", None))
try:
    classic(DescribeVpcsRequest(), secret="not the secret")
    say("classic wrong secret", raised=None)
except (ClientException, ServerException) as e:
    say("classic wrong secret", raised=type(e).__name__, code=e.get_error_code(), message=e.get_error_msg())
