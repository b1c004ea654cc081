# services.huggingface-tgi: Hugging Face Text Generation Inference instances in podman.
#
# Thin glue: option declarations are generated from the Python schema (./generated/options.nix);
# every rule (assertions), unit fact (podman argv, serviceConfig, tmpfiles rules, CDI devices,
# firewall ports) and script comes from the builtins-only core (./core/), the same code
# `tgi-nix validate` and `tgi-nix render-units` evaluate.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.huggingface-tgi;

  inherit (lib)
    filterAttrs
    literalExpression
    mapAttrs
    mkIf
    mkMerge
    mkOption
    optional
    types
    ;

  core = import ./core;

  # The units run the core's shell scripts (./scripts/*.sh) from the store.
  scripts = builtins.mapAttrs (
    name: body: "${pkgs.writeShellScript "huggingface-tgi-${name}" body}"
  ) core.scriptBodies;

  evaluated = core.evaluate {
    inherit (cfg) instances;
    inherit scripts;
    podman = lib.getExe cfg.podmanPackage;
    setpriv = "${pkgs.util-linux}/bin/setpriv";
    # The units run on this system's systemd (NixOS 25.05 and later ship >= 257).
    systemdVersion = lib.toInt (lib.versions.major config.systemd.package.version);
    # Without the NVIDIA module (forced off: the CDI spec comes another way) no generator unit to wait for.
    cdiGenerator =
      if config.hardware.nvidia-container-toolkit.enable then core.nvidiaCdiGenerator else null;
  };

  enabled = filterAttrs (_: inst: inst.enable) cfg.instances;

  # Users only for a configuration without findings: an invalid one (user = "root", say) would
  # otherwise clash with NixOS's own definitions before the assertions could name the option.
  usersToCreate = if evaluated.errors == [ ] then evaluated.users else { };

  # A rootless user's uid (derived from its name unless set) taken by a user this module does not
  # create: one finding per such user, naming the instances' uid option (NixOS's own uniqueness
  # assertion would name neither).
  uidTakenFindings = lib.concatMap (
    user:
    let
      u = usersToCreate.${user};
      holders = lib.attrNames (
        filterAttrs (n: other: n != user && other.uid == u.uid) config.users.users
      );
      instances = lib.attrNames (
        filterAttrs (_: f: f.podmanUser != null && f.podmanUser.name == user) evaluated.instances
      );
    in
    optional (holders != [ ]) {
      path = "instances.${lib.head instances}.uid";
      message = "user ${user} gets uid ${toString u.uid}, which is already the uid of users.users.${lib.head holders}; set uid to a free one on the instances that run as ${user} (${lib.concatStringsSep ", " instances})";
    }
  ) (lib.attrNames usersToCreate);

  # The core's findings name paths below services.huggingface-tgi (instances.<name>.<option>).
  describe = finding: "services.huggingface-tgi.${finding.path}: ${finding.message}";
in
{
  # Prometheus scrape jobs and Open WebUI endpoints for the instances.
  imports = [ ./integrations.nix ];

  options.services.huggingface-tgi = {
    podmanPackage = mkOption {
      type = types.package;
      default = config.virtualisation.podman.package;
      defaultText = literalExpression "config.virtualisation.podman.package";
      description = "The podman used by the instance units.";
    };

    instances = mkOption {
      type = types.attrsOf (types.submodule { options = import ./generated/options.nix { inherit lib; }; });
      default = { };
      example = literalExpression ''
        {
          deepseek = {
            model = "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B";
            port = 8080;
            gpus = "all";
            environmentFile = "/var/lib/secrets/huggingface-tgi.env";
          };
        }
      '';
      description = ''
        Text Generation Inference servers, each run as `huggingface-tgi-<name>.service` in a podman
        container. See docs/options.md for every option.
      '';
    };

    facts = mkOption {
      type = types.attrsOf types.unspecified;
      internal = true;
      readOnly = true;
      default = evaluated.instances;
      description = "What the core computed for each enabled instance (endpoints, image parts, units); read by ./integrations.nix.";
    };
  };

  config = mkMerge [
    {
      # Every rule lives in the core (core/rules.nix, core/guarantees.nix); `tgi-nix validate`
      # evaluates the same findings. Disabled instances are checked too, as the CLI checks them.
      assertions = map (finding: {
        assertion = false;
        message = describe finding;
      }) (evaluated.errors ++ uidTakenFindings);
      warnings = map describe evaluated.warnings;
    }

    (mkIf (enabled != { }) {
      virtualisation.podman.enable = true;

      systemd.services = mapAttrs (_: unit: {
        inherit (unit)
          description
          documentation
          requires
          partOf
          wantedBy
          environment
          unitConfig
          serviceConfig
          ;
        # Rootless units: lingering (the user manager) is enabled by linger-users.service.
        after = unit.after ++ optional (unit.serviceConfig ? User) "linger-users.service";
        wants = unit.wants ++ optional (unit.serviceConfig ? User) "linger-users.service";
        path = [
          cfg.podmanPackage
          # mount, unshare: ExecStopPost re-attaches a dead conmon's network namespace
          # (scripts/remove-container.sh).
          pkgs.util-linux
        ]
        # Rootless podman maps its subordinate ids with the setuid newuidmap/newgidmap wrappers.
        ++ optional (unit.serviceConfig ? User) "/run/wrappers";
      }) evaluated.units;

      # Rootless instances' users: a fixed uid (the units name user@<uid>.service), subordinate
      # ids for the container's user namespace, and lingering so the user manager (which runs
      # podman's health-check timers) is up at boot.
      users.users = mapAttrs (user: u: {
        isSystemUser = true;
        group = user;
        inherit (u) uid home;
        # tmpfiles creates the home (0700) before the units start
        createHome = false;
        autoSubUidGidRange = true;
        linger = true;
        description = "Rootless podman for Hugging Face TGI";
      }) usersToCreate;
      users.groups = mapAttrs (_: u: { gid = u.uid; }) usersToCreate;

      systemd.tmpfiles.rules = evaluated.tmpfilesRules;

      # The units set ProtectKernelModules, so podman cannot load its networking modules on demand.
      boot.kernelModules = evaluated.kernelModules;

      networking.firewall.allowedTCPPorts = evaluated.firewallPorts;
    })

    # podman >= 5.5 reads only /etc/cdi by default; the NVIDIA generator writes to /run/cdi. The
    # NVIDIA module lists /etc/cdi and /var/run/cdi (= /run/cdi) itself: the list options merge
    # by concatenation, so adding ours next to it would repeat both directories.
    (mkIf (evaluated.needsCdi && !config.hardware.nvidia-container-toolkit.enable) {
      virtualisation.containers.containersConf.settings.engine.cdi_spec_dirs = [
        "/etc/cdi"
        "/run/cdi"
      ];
    })

    (mkIf evaluated.needsNvidia {
      hardware.nvidia-container-toolkit.enable = true;
    })
  ];

  meta.maintainers = [ ];
}
