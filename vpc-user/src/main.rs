fn main() {
    println!("{}", vpc::dataplane::object::bytes().len());
}
