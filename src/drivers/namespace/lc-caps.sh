# Sourced by lc-supervise.sh and lc-exec.sh: the capabilities no process of a namespace LC gets, in
# setpriv's --bounding-set syntax. Kept are the ones the boot and the images' own init use: sys_admin
# (lc-boot.sh's mounts, pivot_root, hostname), sys_chroot (nsenter --root), sys_boot (reboot(2) in the
# LC's PID namespace is how it reboots itself), setpcap, chown, dac_override, fowner, kill, setuid and
# setgid, net_admin and net_raw (in its own network namespace), net_bind_service, ipc_lock, sys_nice,
# sys_resource, audit_write, setfcap, lease, fsetid.
lc_dropped_caps=-mknod,-sys_module,-sys_rawio,-sys_time,-syslog,-mac_admin,-mac_override,-bpf,-perfmon,-sys_ptrace,-dac_read_search,-sys_pacct,-audit_control,-audit_read,-wake_alarm,-block_suspend,-sys_tty_config,-linux_immutable,-checkpoint_restore,-ipc_owner
