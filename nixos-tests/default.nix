# NixOS VM tests: one per scenario in ./scenarios (a spec .toml + a test script .py), the same
# pairs `scripts/test.sh` runs in a Debian QEMU VM on machines without NixOS. Exposed as flake checks
# `vm-<scenario>`.
{
  pkgs,
  module,
  mockImage,
  tgiNix,
}:
let
  inherit (pkgs) lib;
  fixtures = builtins.fromJSON (builtins.readFile ./fixtures.json);

  scenarioNames = map (f: lib.removeSuffix ".toml" f) (
    builtins.filter (f: lib.hasSuffix ".toml" f && builtins.pathExists (./scenarios + "/${lib.removeSuffix ".toml" f}.py")) (
      builtins.attrNames (builtins.readDir ./scenarios)
    )
  );

  mockImageRef = "localhost/tgi-mock:latest";

  makeTgiTest =
    name:
    let
      raw = builtins.fromTOML (builtins.readFile (./scenarios + "/${name}.toml"));
      options = raw.scenario or { };
      # No registry in the test VM: every instance runs the mock, loaded from its image file.
      instances = lib.mapAttrs (
        _: inst:
        inst
        // {
          image = mockImageRef;
          imageFile = mockImage;
        }
      ) raw.instances;
      deployed = lib.filterAttrs (_: inst: inst.enable or true) instances;
      envFiles = lib.unique (lib.concatMap (inst: lib.optional (inst ? environmentFile) inst.environmentFile) (builtins.attrValues deployed));
      keyFiles = lib.unique (lib.concatMap (inst: lib.optional (inst ? apiKeyFile) inst.apiKeyFile) (builtins.attrValues deployed));
    in
    pkgs.testers.runNixOSTest {
      name = "huggingface-tgi-${name}";
      nodes.machine =
        { ... }:
        {
          imports = [ module ];
          virtualisation.memorySize = 2048;
          virtualisation.diskSize = 4096;
          environment.systemPackages = [
            pkgs.curl
            pkgs.python3
            pkgs.iproute2
            # the doctor scenario runs the CLI on the machine
            tgiNix
            # faults: counts netavark's DNAT rules
            pkgs.nftables
          ];
          services.huggingface-tgi.instances = instances;
          # On by default anyway; the firewall scenario depends on it (the Debian harness loads a
          # firewall like it for that scenario only, provision.apply_firewall).
          networking.firewall.enable = lib.mkIf (options.firewall or false) true;
          # The test token: created at activation with root-only permissions, like an admin would.
          system.activationScripts.tgi-test-secrets = lib.concatMapStrings (file: ''
            install -d -m 0700 -o root -g root ${dirOf file}
            (umask 077; printf 'HF_TOKEN=%s\n' '${fixtures.token}' > ${file})
          '') envFiles
          + lib.concatMapStrings (file: ''
            install -d -m 0700 -o root -g root ${dirOf file}
            (umask 077; printf '%s\n' '${fixtures.apiKey}' > ${file})
          '') keyFiles;
          environment.etc =
            {
              # The deployed spec, where the Debian harness puts it too (scenarios.SPEC_PATH).
              "tgi-nix/spec.toml".source = (pkgs.formats.toml { }).generate "spec.toml" { instances = deployed; };
            }
            // lib.optionalAttrs (options.fakeCdi or false) (
              lib.mapAttrs' (file: cdiSpec: lib.nameValuePair "cdi/${file}" { text = builtins.toJSON cdiSpec; }) fixtures.fakeCdi.specs
            );
          # No GPU, no driver: the fixed fake nvidia.com/gpu spec above stands in for what the
          # toolkit's generator writes (it needs the driver); the module then lists /etc/cdi itself.
          hardware.nvidia-container-toolkit.enable = lib.mkIf (options.fakeCdi or false) (lib.mkForce false);
          # Module loading locked before the instances start (provision.lock_module_loading_at_boot
          # installs the same unit in the Debian VM): they start only with what boot.kernelModules loaded.
          systemd.services.lock-kernel-modules = lib.mkIf (options.lockKernelModules or false) {
            description = "Lock kernel module loading before the TGI units start";
            wantedBy = [ "multi-user.target" ];
            after = [ "systemd-modules-load.service" "firewall.service" ];
            before = lib.concatMap (n: [ "huggingface-tgi-${n}-image.service" "huggingface-tgi-${n}-model.service" "huggingface-tgi-${n}.service" ]) (builtins.attrNames deployed);
            unitConfig.DefaultDependencies = false;
            serviceConfig = {
              Type = "oneshot";
              RemainAfterExit = true;
            };
            script = "echo 1 > /proc/sys/kernel/modules_disabled";
          };
          # The stand-in Hub (a listener the scenario starts) is reached from the containers.
          networking.firewall.allowedTCPPorts = lib.optional (options ? fakeHubPort) options.fakeHubPort;
          # The fake CDI devices' nodes on the host (/dev/null, zero, full twins), as the Debian harness
          # makes them (scenarios.fake_node_rules).
          systemd.tmpfiles.rules = lib.optionals (options.fakeCdi or false) (
            lib.mapAttrsToList (path: devnum: "c ${path} 0666 root root - ${devnum}") fixtures.fakeCdi.nodes
          );
        };
      testScript =
        { nodes, ... }:
        let
          # instance -> its rootless user (null: rootful), from the module's own facts
          podmanUsers = lib.mapAttrs (_: f: f.podmanUser) nodes.machine.services.huggingface-tgi.facts;
        in
        ''
          import json
          import shlex
          spec = json.loads(${builtins.toJSON (builtins.toJSON deployed)})
          TOKEN = ${builtins.toJSON fixtures.token}
          API_KEY = ${builtins.toJSON fixtures.apiKey}
          _podman_users = json.loads(${builtins.toJSON (builtins.toJSON podmanUsers)})
          def podman_of(name):
              u = _podman_users[name]
              if u is None:
                  return "podman"
              return shlex.join(["runuser", "-u", u["name"], "--", "env", "-C", "/",
                                 "HOME=" + u["home"], "XDG_RUNTIME_DIR=" + u["runtimeDir"], "podman"])
          machine.start()
        ''
        + builtins.readFile (./scenarios + "/${name}.py");
    };
in
lib.listToAttrs (map (name: lib.nameValuePair "vm-${name}" (makeTgiTest name)) scenarioNames)
