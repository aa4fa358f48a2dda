#!/usr/bin/python3
"""Writes the run sandbox's seccomp filter (BPF, for bwrap --seccomp) to stdout.

Built with libseccomp's own Python binding (Debian python3-seccomp) rather than hand-assembled
BPF. Default allow, with a deny list: a browser and Node need a wide, changing set of syscalls,
while what a hostile bot must not do is small and stable. Denied calls fail with EPERM (so the
caller sees an ordinary error); syscalls of a foreign architecture (x32, i386 on x86_64) kill the
process, which is libseccomp's default for architectures the filter was not built for.
"""
import errno
import sys
import termios

import seccomp

DENIED = [
    # Looking into or steering other processes.
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    # Kernel attack surface and kernel state.
    "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "lookup_dcookie", "fanotify_init", "open_by_handle_at", "name_to_handle_at",
    "iopl", "ioperm", "syslog", "acct", "quotactl", "swapon", "swapoff", "reboot",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "vhangup", "uselib",
    "personality",
    # Changing the sandbox itself: mounts and namespaces.
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
    "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
]


def main() -> None:
    denied = seccomp.ERRNO(errno.EPERM)
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in DENIED:
        try:
            f.add_rule(denied, name)
        except (RuntimeError, ValueError, OSError):
            pass  # not a syscall on this architecture
    # Typing into the controlling terminal of a process outside (bwrap --new-session as well).
    f.add_rule(denied, "ioctl", seccomp.Arg(1, seccomp.MASKED_EQ, 0xFFFFFFFF, termios.TIOCSTI))
    f.export_bpf(sys.stdout.buffer)
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
