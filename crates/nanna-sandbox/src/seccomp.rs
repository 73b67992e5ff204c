//! The seccomp filter bubblewrap installs just before it runs a confined command.
//!
//! What the namespaces leave open, the filter closes (each denied call fails with `EPERM`):
//! - **Host Unix sockets.** A read-only bind mount does not stop `connect()` to a socket
//!   file (the kernel checks write permission on the socket inode, not the mount's
//!   read-only flag), so `/run/docker.sock` would be root on the host. With the network
//!   denied, `socket()` may only create `AF_INET`/`AF_INET6` sockets (they live in the
//!   command's own network namespace, whose loopback is private) and `AF_NETLINK` (glibc's
//!   `getaddrinfo` asks it about interfaces); `socketpair(AF_UNIX)` stays, as pipes between
//!   a command's own processes. `AF_VSOCK` (a VM's way to its host) is denied with the rest.
//! - **`io_uring`**, which can open and connect sockets without calling `socket()`; the
//!   same reasoning as Codex CLI's Linux sandbox (`codex-rs/linux-sandbox/src/seccomp.rs`).
//! - **The kernel keyring** (`keyctl`, `add_key`, `request_key`): secrets the user's
//!   session keeps there; Docker's default profile denies these for the same reason.
//! - **The sandbox's init**: `ptrace` attaching to PID 1 and `process_vm_writev` into it
//!   (`/proc/1/mem` is closed by a read-only `/proc`).
//!
//! seccompiler's program starts with an architecture check that kills a process using
//! another system-call ABI (i386's `socketcall` would bypass the `socket` rule); the x32
//! numbers of the denied calls are listed as well, as x32 shares x86-64's architecture tag.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Bit that marks an x32 system-call number on x86-64 (`__X32_SYSCALL_BIT`).
#[cfg(target_arch = "x86_64")]
const X32_BIT: i64 = 0x4000_0000;

/// The filter for a confined command, as the bytes of a `struct sock_filter` array
/// (what bubblewrap's `--seccomp FD` reads).
pub(crate) fn program(network_denied: bool) -> Result<Vec<u8>, String> {
    let arch = target_arch()?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    let always = [
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
    ];
    for nr in always {
        deny(&mut rules, nr, Vec::new());
    }
    // The sandbox's init (bubblewrap, PID 1 of the command's PID namespace) reports the
    // command's end to the monitor nanna waits for: stopped by a ptrace attach, it never
    // did, so `nanna sandbox` hung and the command's other processes lived on until the
    // timeout (measured). Debuggers and strace still attach to the command's own processes.
    let is_init = || {
        SeccompCondition::new(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, 1)
            .map_err(|e| e.to_string())
    };
    let request_is = |request: u32| {
        SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, request.into())
            .map_err(|e| e.to_string())
    };
    let attach_init = [libc::PTRACE_ATTACH, libc::PTRACE_SEIZE]
        .into_iter()
        .map(|request| {
            SeccompRule::new(vec![request_is(request)?, is_init()?]).map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, String>>()?;
    deny(&mut rules, libc::SYS_ptrace, attach_init);
    let pid_is_init = SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, 1)
        .map_err(|e| e.to_string())?;
    let rule = SeccompRule::new(vec![pid_is_init]).map_err(|e| e.to_string())?;
    deny(&mut rules, libc::SYS_process_vm_writev, vec![rule]);
    if network_denied {
        let domain_is_not = |family: i32| {
            SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, family as u64)
                .map_err(|e| e.to_string())
        };
        let socket_rule = SeccompRule::new(vec![
            domain_is_not(libc::AF_INET)?,
            domain_is_not(libc::AF_INET6)?,
            domain_is_not(libc::AF_NETLINK)?,
        ])
        .map_err(|e| e.to_string())?;
        deny(&mut rules, libc::SYS_socket, vec![socket_rule]);
        let pair_rule =
            SeccompRule::new(vec![domain_is_not(libc::AF_UNIX)?]).map_err(|e| e.to_string())?;
        deny(&mut rules, libc::SYS_socketpair, vec![pair_rule]);
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(|e| e.to_string())?;
    let program: BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())?;
    let mut bytes = Vec::with_capacity(program.len() * 8);
    for ins in program {
        bytes.extend_from_slice(&ins.code.to_ne_bytes());
        bytes.push(ins.jt);
        bytes.push(ins.jf);
        bytes.extend_from_slice(&ins.k.to_ne_bytes());
    }
    Ok(bytes)
}

/// Denies `nr` when any of `rules` matches (always, when `rules` is empty), and its x32 twin.
fn deny(map: &mut BTreeMap<i64, Vec<SeccompRule>>, nr: i64, rules: Vec<SeccompRule>) {
    #[cfg(target_arch = "x86_64")]
    map.insert(nr | X32_BIT, rules.clone());
    map.insert(nr, rules);
}

fn target_arch() -> Result<TargetArch, String> {
    if cfg!(target_arch = "x86_64") {
        Ok(TargetArch::x86_64)
    } else if cfg!(target_arch = "aarch64") {
        Ok(TargetArch::aarch64)
    } else if cfg!(target_arch = "riscv64") {
        Ok(TargetArch::riscv64)
    } else {
        Err(format!(
            "no seccomp filter for the {} architecture",
            std::env::consts::ARCH
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_whole_instructions_and_the_network_adds_rules() {
        let closed = program(true).unwrap();
        let open = program(false).unwrap();
        assert_eq!(closed.len() % 8, 0);
        assert_eq!(open.len() % 8, 0);
        assert!(closed.len() > open.len());
    }
}
