//! The lab's agent: `vpc lab up` starts a `vpc daemon` when none answers on the socket, and
//! `vpc lab down` stops the one it started (a marker in the state directory remembers which).

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use crate::{
    agent::HostOptions,
    api::{Conn, client},
};

fn marker(opts: &HostOptions) -> PathBuf {
    opts.state_dir.join("lab-agent")
}

/// A connection to a running agent, starting one (`exe daemon` with the same host options) if
/// none answers.
pub fn ensure(opts: &HostOptions, exe: &std::path::Path, global_args: &[String]) -> anyhow::Result<Conn> {
    ensure_in(opts, None, exe, global_args, &[])
}

/// `ensure`, the agent started in network namespace `netns` (in this mount namespace, so its
/// pins stay where every command sees them) with `daemon_args` after `daemon`.
pub fn ensure_in(
    opts: &HostOptions,
    netns: Option<&str>,
    exe: &std::path::Path,
    global_args: &[String],
    daemon_args: &[String],
) -> anyhow::Result<Conn> {
    let socket = opts.socket();
    if client::is_running(&socket) {
        return Ok(Conn::Remote(socket));
    }
    std::fs::create_dir_all(&opts.state_dir)?;
    let log = std::fs::File::create(opts.state_dir.join("daemon.log"))?;
    let mut cmd = match netns {
        Some(ns) => {
            let mut cmd = Command::new("nsenter");
            cmd.arg(format!("--net={}", crate::netns::path(ns).display())).arg(exe);
            cmd
        }
        None => Command::new(exe),
    };
    cmd.args(global_args).arg("daemon").args(daemon_args).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    // Its own session: the agent outlives this command and the terminal.
    unsafe {
        use std::os::unix::process::CommandExt as _;
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let child = cmd.spawn().with_context(|| format!("starting {} daemon", exe.display()))?;
    std::fs::write(marker(opts), child.id().to_string())?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !client::is_running(&socket) {
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(opts.state_dir.join("daemon.log")).unwrap_or_default();
            bail!("the agent did not come up on {}:\n{log}", socket.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(Conn::Remote(socket))
}

/// Stop the agent `ensure` started, if it is still running.
pub fn stop(opts: &HostOptions) -> anyhow::Result<()> {
    let marker = marker(opts);
    if !marker.exists() {
        return Ok(());
    }
    let socket = opts.socket();
    if client::is_running(&socket) {
        let _ = client::request(&socket, "POST", "/shutdown", "");
        let deadline = Instant::now() + Duration::from_secs(10);
        while client::is_running(&socket) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = std::fs::remove_file(marker);
    Ok(())
}
