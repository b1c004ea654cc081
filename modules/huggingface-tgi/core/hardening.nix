# The sandbox of each unit kind, one directive per line, each loosened one with its measured
# reason (docs/hardening.md has the measurements). The container gets its own hardening through
# podman flags (`container`).
let
  inherit (import ./prelude.nix) optional optionals;
in
rec {
  # Kernel modules podman loads (overlay storage; netavark's bridge, veth and NAT through nftables or
  # iptables), preloaded at boot: boot.kernelModules on NixOS, render-units' modules-load.d file
  # elsewhere. ProtectKernelModules does not need them preloaded: it stops only the unit's own
  # loading, and the kernel still loads them on demand (measured: a unit starts on a fresh boot with
  # nothing preloaded). A host that locks module loading after boot does need them (NixOS's
  # security.lockKernelModules, kernel.modules_disabled=1): there the first start of an instance
  # fails without them (the VM scenario `cache` locks loading before the units start and shows both).
  # Measured with /proc/modules before and after `podman run -p` in the VM (Debian trixie, kernel
  # 6.12, podman 5.4, netavark 1.14), dependencies (llc, stp, nf_nat, nf_conntrack, nf_defrag_*,
  # libcrc32c, nft_fib_ipv4/6, x_tables) left to modprobe; br_netfilter and xt_multiport were never
  # loaded.
  # { rootful, rootless }: whether any instance runs that way.
  kernelModulesFor =
    { rootful, rootless }:
    [ "overlay" ] ++ (if rootful then rootfulKernelModules else [ ]) ++ (if rootless then rootlessKernelModules else [ ]);
  # Rootless podman networks with pasta, which opens /dev/net/tun (no bridge, no netfilter); its
  # storage is overlay too (native in a user namespace since kernel 5.13).
  rootlessKernelModules = [ "tun" ];
  rootfulKernelModules = [
    "bridge"
    "veth"
    # netavark's nftables driver (Debian's default; NixOS with networking.nftables.enable)
    "nf_tables"
    "nft_chain_nat"
    "nft_ct"
    "nft_fib_inet"
    "nft_masq"
    "nft_nat"
    # its iptables driver (NixOS's default) through iptables-nft: the xt matches run in nft_compat
    "nft_compat"
    "xt_MASQUERADE"
    "xt_addrtype"
    "xt_comment"
    "xt_conntrack"
    "xt_mark"
    "xt_nat"
    "xt_tcpudp"
    # ... and through iptables-legacy
    "iptable_nat"
    "iptable_filter"
  ];

  nvidiaDevices = [
    "char-nvidiactl rw"
    "char-nvidia-frontend rw"
    "char-nvidia-uvm rw"
    "char-nvidia-caps rw"
  ];

  # The container: no capabilities (TGI runs as root inside the image, see TGI #3082, but needs
  # none of root's privileges), no privilege escalation, bounded process count.
  container = [
    "--cap-drop=all"
    # TGI binds port 80 inside its network namespace; allow that without CAP_NET_BIND_SERVICE.
    "--sysctl=net.ipv4.ip_unprivileged_port_start=80"
    "--security-opt=no-new-privileges"
    # TGI's shards are threaded (PyTorch, tokenizers); 8192 tasks leaves room for 8 shards.
    "--pids-limit=8192"
  ];

  # Sandboxing of the podman process itself, common to rootful and rootless units. Every
  # directive podman tolerates is on; each loosened one says why.
  common = {
    ProtectSystem = "strict";
    PrivateTmp = true;
    ProtectKernelLogs = true;
    # Stops only the unit's own module loading; the kernel still loads podman's on demand.
    ProtectKernelModules = true;
    # false (rootful): netavark writes net.ipv4.ip_forward and per-interface sysctls (EROFS otherwise)
    ProtectKernelTunables = false;
    # false: crun creates the container's cgroup
    ProtectControlGroups = false;
    # false: crun sets the container's hostname (sethostname EPERM otherwise)
    ProtectHostname = false;
    # false (rootful): crun mknods /dev/null & co. in the container (EPERM with a private /dev)
    PrivateDevices = false;
    # false: podman maps the container's network namespace into the host's
    PrivateNetwork = false;
    # false: rootful overlay mounts need the real root (EPERM in a user namespace); rootless
    # podman makes its own user namespace from the subordinate ids, which a private one lacks
    PrivateUsers = false;
    ProtectClock = true;
    ProtectProc = "invisible";
    # false (rootful): crun then fails to set up the container's /dev ("cannot resolve `null`
    # under rootfs", measured in the VM with podman 5.4 / crun 1.21)
    RestrictSUIDSGID = false;
    RestrictRealtime = true;
    LockPersonality = true;
    SystemCallArchitectures = "native";
    # A deny list (not @system-service, which kills podman with SIGSYS); inherited by the
    # container's processes, so only groups no inference server needs.
    SystemCallFilter = [ "~@clock @cpu-emulation @debug @module @obsolete @reboot @swap @raw-io" ];
    SystemCallErrorNumber = "EPERM";
    # AF_NETLINK: netavark (rootful) and pasta (rootless) configure interfaces and routes;
    # inherited by the container too.
    RestrictAddressFamilies = [ "AF_UNIX AF_INET AF_INET6 AF_NETLINK" ];
    DevicePolicy = "closed";
    UMask = "0077";
  };

  # Rootful podman: it needs root, mounts, netlink and namespaces.
  rootful =
    {
      port,
      gpu,
      cacheDir,
    }:
    {
      ReadWritePaths = [
        # image and container storage, bolt_state.db
        "/var/lib/containers"
        # netavark's lock, netns mounts, conmon and crun state, the cidfile
        "/run"
        # podman's temporary files during image load/commit
        "/var/tmp"
        # netavark writes network configs here when it exists
        "-/etc/containers/networks"
        cacheDir
      ];
      ProtectHome = true;
      NoNewPrivileges = true;
      # Capabilities rootful podman, crun and netavark use, plus the container's own set;
      # everything else (modules, raw I/O, clock, boot, MAC, audit control, BPF, ...) is dropped.
      CapabilityBoundingSet = [
        "CAP_SYS_ADMIN CAP_NET_ADMIN CAP_SYS_CHROOT CAP_SETUID CAP_SETGID CAP_SETPCAP CAP_SETFCAP"
        "CAP_CHOWN CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_FOWNER CAP_FSETID CAP_MKNOD CAP_SYS_RESOURCE"
      ]
      # conmon holds the published host port open; below 1024 that needs the privilege.
      ++ optional (port < 1024) "CAP_NET_BIND_SERVICE";
      DeviceAllow = optionals gpu nvidiaDevices;
      # No IPAddressDeny=: the readiness poll (ExecStartPost=, wait-ready) runs in this unit's
      # cgroup, and netavark's DNAT rewrites its packets to the container's address (a podman
      # subnet the host may configure) before the cgroup's IP filter sees them; an allow list
      # would have to guess that subnet and, guessing wrong, keep the unit from ever being ready
      # (seen in the VM: with IPAddressDeny=any + IPAddressAllow=127.0.0.1 the unit never turned
      # active; without the filter it does). Exposure 5.0 -> 5.1.
    };

  # Rootless podman: the user's own uid outside, a user namespace of its subordinate ids inside.
  # Every podman of a user joins the user and mount namespaces of its pause process, which the
  # units' first ExecStartPre creates outside this sandbox, where the setuid newuidmap/newgidmap
  # can map the ids. The podman here then needs no host privilege at all, and its file-system view
  # after joining is the host's, limited by the user's own permissions; the mount-namespace
  # directives below bind it only until it joins (see docs/hardening.md).
  rootless =
    {
      user,
      home,
      runtimeDir,
      gpu,
      cacheDir,
    }:
    {
      User = user;
      Group = user;
      # Like nixpkgs' oci-containers for rootless --sdnotify=healthy: podman manages cgroups below.
      Delegate = true;
      ReadWritePaths = [
        # container storage (overlay layers, bolt_state.db) and podman's configuration
        home
        # podman's temporary files during image load/commit
        "/var/tmp"
        cacheDir
      ];
      # tmpfs instead of true: hides /home and /root but keeps /run/user, bound back in below
      ProtectHome = "tmpfs";
      # podman's runtime state, the user manager's bus (health-check timers), pasta's files
      BindPaths = [ runtimeDir ];
      NoNewPrivileges = true;
      # Empty: no host capabilities. Inside the user namespace podman, crun and pasta get a full
      # set of their own (the kernel resets the bounding set on entering a user namespace).
      CapabilityBoundingSet = "";
      # Rootless crun only bind-mounts device nodes (no mknod, no setuid files on the host).
      RestrictSUIDSGID = true;
      # Rootless podman writes no host sysctls (pasta, not netavark, sets up the network).
      ProtectKernelTunables = true;
      # The container's cgroup is a scope of the user's manager, created over D-Bus.
      ProtectControlGroups = true;
      ProcSubset = "pid";
      PrivateMounts = true;
      # Device nodes reach the container by bind mounts in the pause process's namespaces.
      PrivateDevices = true;
      # pasta (rootless networking) opens /dev/net/tun
      DeviceAllow = [ "/dev/net/tun rw" ] ++ optionals gpu nvidiaDevices;
      # no IPAddressDeny: pasta relays published-port and outbound (model download) traffic
      # through this unit's own sockets
      RemoveIPC = true;
    };
}
