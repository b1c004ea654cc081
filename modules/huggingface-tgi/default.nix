# services.huggingface-tgi: Hugging Face Text Generation Inference instances in podman.
#
# Thin glue: option declarations are generated from the Python schema (./options.nix), and every
# unit fact (podman argv, serviceConfig, tmpfiles rules, CDI devices, firewall ports) comes from
# the builtins-only core (./core.nix), the same code `tgi-nix render-units` evaluates.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.huggingface-tgi;

  inherit (lib)
    attrNames
    concatMap
    filter
    filterAttrs
    length
    literalExpression
    mapAttrs
    mapAttrsToList
    mkIf
    mkMerge
    mkOption
    optional
    types
    unique
    ;

  core = import ./core.nix;

  evaluated = core.evaluate {
    inherit (cfg) instances;
    podman = lib.getExe cfg.podmanPackage;
    shell = pkgs.runtimeShell;
    setpriv = "${pkgs.util-linux}/bin/setpriv";
  };

  enabled = filterAttrs (_: inst: inst.enable) cfg.instances;

  optionPath = name: option: "services.huggingface-tgi.instances.${name}.${option}";

  # Mirrors the cross-field rules of python/src/tgi_nix/schema.py for hand-written configurations.
  instanceAssertions =
    name: inst:
    [
      {
        assertion = builtins.match "[a-z]([a-z0-9-]{0,38}[a-z0-9])?" name != null;
        message = "services.huggingface-tgi.instances.${name}: the instance name must be 1-40 lowercase letters, digits and '-', starting with a letter (it becomes huggingface-tgi-${name}.service).";
      }
      {
        assertion = inst.dtype == null || inst.quantize == null;
        message = "${optionPath name "dtype"} cannot be combined with ${optionPath name "quantize"} (TGI refuses it); unset one of them.";
      }
      {
        assertion =
          inst.maxInputTokens == null || inst.maxTotalTokens == null || inst.maxTotalTokens > inst.maxInputTokens;
        message = "${optionPath name "maxTotalTokens"} must be greater than ${optionPath name "maxInputTokens"}.";
      }
      {
        assertion = inst.numShard == null || !(builtins.isList inst.gpus) || inst.numShard <= length inst.gpus;
        message = "${optionPath name "numShard"} is larger than the number of GPUs in ${optionPath name "gpus"}; list more GPUs or lower numShard.";
      }
      {
        assertion =
          builtins.match "[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*" inst.model != null
          || lib.hasPrefix "/" inst.model;
        message = "${optionPath name "model"} must be a Hugging Face model id (owner/name) or an absolute path to local weights.";
      }
      {
        assertion = (inst.user == null) == (inst.uid == null);
        message = "${optionPath name "user"} and ${optionPath name "uid"} go together (rootless podman needs the user's fixed uid); set both or neither.";
      }
      {
        assertion = inst.user == null || inst.port >= 1024;
        message = "${optionPath name "port"} (${toString inst.port}) is privileged, but the instance runs rootless as ${inst.user}; use a port of 1024 or more, or unset ${optionPath name "user"}.";
      }
      {
        assertion = filter (n: builtins.match "(.*_)?(TOKEN|SECRET|PASSWORD|API_KEY)" (lib.toUpper n) != null) (
          attrNames inst.environment
        ) == [ ];
        message = "${optionPath name "environment"} contains a secret-looking variable; put secrets in ${optionPath name "environmentFile"}, which never enters the Nix store.";
      }
    ];

  portsInUse = mapAttrsToList (_: inst: inst.port) enabled;
  rootless = filterAttrs (_: inst: inst.user != null) enabled;
  rootlessUsers = mapAttrsToList (_: inst: inst.user) rootless;
  rootlessUids = mapAttrsToList (_: inst: inst.uid) rootless;
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
      type = types.attrsOf (types.submodule { options = import ./options.nix { inherit lib; }; });
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
  };

  config = mkIf (enabled != { }) (mkMerge [
    {
      assertions = concatMap (name: instanceAssertions name cfg.instances.${name}) (attrNames enabled) ++ [
        {
          assertion = length rootlessUsers == length (unique rootlessUsers) && length rootlessUids == length (unique rootlessUids);
          message = "services.huggingface-tgi.instances: two rootless instances share a user or uid (users: ${toString rootlessUsers}; uids: ${toString rootlessUids}); give each rootless instance its own user and uid.";
        }
        {
          assertion = length portsInUse == length (unique portsInUse);
          message = "services.huggingface-tgi.instances: two enabled instances use the same port (ports: ${toString portsInUse}); give each instance its own port.";
        }
      ];

      warnings = concatMap (
        name:
        let
          inst = enabled.${name};
        in
        optional (builtins.match ".*(:latest|/[^:@]*)" inst.image != null)
          "${optionPath name "image"} (${inst.image}) is not pinned; pin a release tag or an @sha256: digest."
      ) (attrNames enabled);

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
          # mount, unshare: ExecStopPost re-attaches a dead conmon's network namespace (core.nix).
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
      }) evaluated.users;
      users.groups = mapAttrs (_: u: { gid = u.uid; }) evaluated.users;

      systemd.tmpfiles.rules = evaluated.tmpfilesRules;

      # The units set ProtectKernelModules, so podman cannot load its networking modules on demand.
      boot.kernelModules = evaluated.kernelModules;

      networking.firewall.allowedTCPPorts = evaluated.firewallPorts;
    }

    (mkIf evaluated.needsCdi {
      # podman >= 5.5 reads only /etc/cdi by default; the NVIDIA generator writes to /run/cdi.
      virtualisation.containers.containersConf.settings.engine.cdi_spec_dirs = [
        "/etc/cdi"
        "/run/cdi"
      ];
    })

    (mkIf evaluated.needsNvidia {
      hardware.nvidia-container-toolkit.enable = true;
    })
  ]);

  meta.maintainers = [ ];
}
