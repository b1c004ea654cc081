# What every generated unit promises, as data: the expected value of each sandboxing directive per
# unit kind, and the container's hardening flags. hardening.nix implements the sandbox; this table
# is what the invariant tests (python/tests/test_invariants.py) check every rendered unit against and
# what docs/hardening.md's generated table shows (`tgi-nix options` renders it). Not imported by the
# core: a change to the sandbox must change this promise too, on purpose.
#
# A value is the directive's text (one line), a list (one line each, in order) or null (absent).
# Placeholders, expanded per instance: @cacheDir@, @user@, @home@, @runtimeDir@ (the rootless
# user's), @gpuDevices@ (the NVIDIA device nodes, only when gpus is set) and @bindService@
# (CAP_NET_BIND_SERVICE, only when a rootful instance's port is below 1024).
let
  all = value: {
    mainRootful = value;
    imageRootful = value;
    mainRootless = value;
    imageRootless = value;
  };
  byMode = rootful: rootless: {
    mainRootful = rootful;
    imageRootful = rootful;
    mainRootless = rootless;
    imageRootless = rootless;
  };
  mainOnly = value: {
    mainRootful = value;
    imageRootful = null;
    mainRootless = value;
    imageRootless = null;
  };
in
{
  kinds = [
    "mainRootful"
    "imageRootful"
    "mainRootless"
    "imageRootless"
  ];

  directives = {
    ProtectSystem = all "strict";
    PrivateTmp = all "true";
    ProtectKernelLogs = all "true";
    ProtectKernelModules = all "true";
    ProtectClock = all "true";
    ProtectProc = all "invisible";
    RestrictRealtime = all "true";
    LockPersonality = all "true";
    SystemCallArchitectures = all "native";
    SystemCallFilter = all "~@clock @cpu-emulation @debug @module @obsolete @reboot @swap @raw-io";
    SystemCallErrorNumber = all "EPERM";
    RestrictAddressFamilies = all "AF_UNIX AF_INET AF_INET6 AF_NETLINK";
    DevicePolicy = all "closed";
    UMask = all "0077";
    NoNewPrivileges = all "true";
    ProtectHostname = all "false";
    PrivateNetwork = all "false";
    PrivateUsers = all "false";
    ProtectKernelTunables = byMode "false" "true";
    ProtectControlGroups = byMode "false" "true";
    PrivateDevices = byMode "false" "true";
    RestrictSUIDSGID = byMode "false" "true";
    ProtectHome = byMode "true" "tmpfs";
    CapabilityBoundingSet = byMode [
      "CAP_SYS_ADMIN CAP_NET_ADMIN CAP_SYS_CHROOT CAP_SETUID CAP_SETGID CAP_SETPCAP CAP_SETFCAP"
      "CAP_CHOWN CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_FOWNER CAP_FSETID CAP_MKNOD CAP_SYS_RESOURCE"
      "@bindService@"
    ] "";
    # Pulling or loading an image opens no GPU device node.
    DeviceAllow = {
      mainRootful = [ "@gpuDevices@" ];
      imageRootful = null;
      mainRootless = [
        "/dev/net/tun rw"
        "@gpuDevices@"
      ];
      imageRootless = "/dev/net/tun rw";
    };
    ReadWritePaths = {
      mainRootful = [
        "/var/lib/containers"
        "/run"
        "/var/tmp"
        "-/etc/containers/networks"
        "@cacheDir@"
      ];
      imageRootful = [
        "/var/lib/containers"
        "/run"
        "/var/tmp"
      ];
      mainRootless = [
        "@home@"
        "/var/tmp"
        "@cacheDir@"
      ];
      imageRootless = [
        "@home@"
        "/var/tmp"
        "@cacheDir@"
      ];
    };
    # None: the readiness poll reaches the container through netavark's DNAT (hardening.nix).
    IPAddressDeny = all null;
    IPAddressAllow = all null;
    User = byMode null "@user@";
    Group = byMode null "@user@";
    Delegate = byMode null "true";
    BindPaths = byMode null [ "@runtimeDir@" ];
    ProcSubset = byMode null "pid";
    PrivateMounts = byMode null "true";
    RemoveIPC = byMode null "true";
    # Off everywhere (docs/hardening.md says why): named here so that turning one on is a decision.
    RestrictNamespaces = all null;
    MemoryDenyWriteExecute = all null;
    # Podman, not the main process, sends READY=1 (--sdnotify=conmon); wait-ready sends STATUS=.
    NotifyAccess = mainOnly "all";
  };

  # Flags on every container's podman run.
  container = [
    "--cap-drop=all"
    "--sysctl=net.ipv4.ip_unprivileged_port_start=80"
    "--security-opt=no-new-privileges"
    "--pids-limit=8192"
    "--health-on-failure=kill"
  ];

  gpuDevices = [
    "char-nvidiactl rw"
    "char-nvidia-frontend rw"
    "char-nvidia-uvm rw"
    "char-nvidia-caps rw"
  ];
}
