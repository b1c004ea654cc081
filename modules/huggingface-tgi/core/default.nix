# Unit logic for services.huggingface-tgi: instance options -> validation findings, per-instance
# facts, systemd units, tmpfiles rules, kernel modules, firewall ports, users.
#
# Uses only `builtins` (no nixpkgs `lib`), so `nix-instantiate --eval --strict --json` runs it
# anywhere: the NixOS module (../default.nix) calls it, and `tgi-nix` (validate, render-units,
# doctor, render-k8s, the VM harness) asks it through ../eval.nix. Nothing else computes these facts.
#
#   prelude.nix     builtins helpers          systemd.nix     Exec quoting, unit text, time spans
#   network.nix     addresses, publishing     image.nix       image references
#   hardening.nix   sandbox per unit kind     podman.nix      health check, tagged argv, image fetch
#   units.nix       one instance -> facts and units   restart.nix   restart/retry per target systemd
#   rules.nix       option value rules        guarantees.nix  checks on the final argv and unit text
#   users.nix       who runs podman (rootless default, shared user, derived uid)
#
# Input instances are complete option sets (every option present, `null` where unset), exactly
# what the NixOS module's submodule yields and what the Python schema dumps.
let
  inherit (builtins)
    attrNames
    concatMap
    foldl'
    head
    listToAttrs
    match
    readFile
    sort
    ;
  inherit (import ./prelude.nix) filterAttrs mapAttrs' optional unique;
  systemd = import ./systemd.nix;
  hardening = import ./hardening.nix;
  units = import ./units.nix;
  rules = import ./rules.nix;
  guarantees = import ./guarantees.nix;
  sizes = import ./sizes.nix;

  # The shell scripts the units run (../scripts/*.sh, shellchecked files). The first line of each
  # file is a `#!/bin/sh` (or `#!/bin/bash`) for shellcheck; whoever installs a script writes its
  # own shebang, a bash's.
  scriptNames = [
    "copy-env-file"
    "failure-report"
    "fetch-image"
    "model-download"
    "remove-container"
    "wait-ready"
    "write-api-key-env"
  ];
  scriptBody = name: head (match "#![^\n]*\n(.*[^\n])\n*" (readFile (../scripts + "/${name}.sh")));
  scriptBodies = listToAttrs (
    map (name: {
      inherit name;
      value = scriptBody name;
    }) scriptNames
  );
in
{
  inherit (systemd) escapeExecArg execLine parseTimespan;
  inherit (hardening) kernelModulesFor;
  inherit (units) unitPrefix stateRoot nvidiaCdiGenerator;
  inherit scriptBodies;

  # instances: attrset name -> complete option set. Returns everything the NixOS module and
  # `tgi-nix` need; disabled instances get no facts or units.
  #   scripts: name -> the path a unit runs script `name` from (NixOS: store paths);
  #            null: <scriptsDir>/<name>.sh
  evaluate =
    {
      instances,
      podman,
      # util-linux's setpriv, for the rootless units' ExecStartPre
      setpriv ? "/usr/bin/setpriv",
      scripts ? null,
      scriptsDir ? "/usr/local/libexec/tgi-nix",
      # the interpreter written into the script files for hosts without NixOS (scriptFiles): a
      # bash, as pkgs.writeShellScript uses on NixOS (wait-ready needs bash's /dev/tcp; the
      # other scripts are POSIX sh)
      shell ? "/bin/bash",
      # The major version of the systemd the units run on; null: a current one (NixOS). Older
      # ones get equivalents of the keys they lack, listed in `notes`.
      systemdVersion ? null,
      # The unit that writes the NVIDIA CDI spec, which a GPU instance waits for; null: none on
      # this host (NixOS without hardware.nvidia-container-toolkit: the spec comes another way).
      cdiGenerator ? units.nvidiaCdiGenerator,
    }:
    let
      script = name: if scripts != null then scripts.${name} else "${scriptsDir}/${name}.sh";
      # Values beyond the size bounds (sizes.nix) reach no other rule and no unit: a huge string
      # would overflow the stack of Nix's regular expressions. Such a spec has findings only.
      oversized = sizes.spec instances;
      enabled = if oversized != [ ] then { } else filterAttrs (_: inst: inst.enable) instances;
      facts = builtins.mapAttrs (units.instance {
          inherit
            cdiGenerator
            podman
            setpriv
            script
            systemdVersion
            ;
        }) enabled;
      all = map (name: facts.${name}) (sort builtins.lessThan (attrNames facts));
      allUnits = foldl' (acc: f: acc // f.units) { } all;
      sorted = sort builtins.lessThan (attrNames instances);
      podmanUsers = listToAttrs (
        concatMap (
          f:
          optional (f.podmanUser != null) {
            inherit (f.podmanUser) name;
            value = f.podmanUser;
          }
        ) all
      );
    in
    {
      # Validation findings ({ path, message }): the size bounds; else the option values' rules, the
      # rules across instances, then the guarantees on what was rendered. Empty when the spec is valid.
      errors =
        if oversized != [ ] then
          oversized
        else
          concatMap (name: rules.instance name instances.${name}) sorted
          ++ rules.spec instances
          ++ concatMap (
            f:
            guarantees.check {
              inherit (f)
                name
                podmanWords
                launcherWords
                downloadWords
                ;
              inst = instances.${f.name};
              offlineManaged = f.model.downloaded;
              texts = builtins.attrValues f.unitFiles;
            }
          ) all;
      warnings =
        if oversized != [ ] then
          [ ]
        else
          concatMap (name: rules.warnings name instances.${name}) (attrNames enabled) ++ rules.specWarnings instances;
      # What rendering for the target systemd changed or dropped (strings; empty on a current one).
      notes =
        let
          inherit (units.restartPolicy systemdVersion) note;
        in
        optional (all != [ ] && note != null) note;
      # Unit keys rendered only for a target systemd at least this new (name -> version).
      newerSystemdKeys = units.keysSince;
      instances = builtins.mapAttrs (
        _: f:
        removeAttrs f [
          "podmanWords"
          "launcherWords"
          "downloadWords"
        ]
      ) facts;
      units = allUnits;
      # Modules to load at boot (NixOS: boot.kernelModules; render-units: modules-load.d), for
      # hosts that lock module loading after boot (hardening.nix); none when no instance runs.
      kernelModules =
        if all != [ ] then
          hardening.kernelModulesFor {
            rootful = builtins.any (f: !f.rootless) all;
            rootless = builtins.any (f: f.rootless) all;
          }
        else
          [ ];
      unitFiles = mapAttrs' (name: unit: {
        name = "${name}.service";
        value = systemd.toUnitFile unit;
      }) allUnits;
      tmpfilesRules = unique (concatMap (f: f.tmpfilesRules) all);
      firewallPorts = unique (concatMap (f: f.network.firewallPorts) all);
      needsNvidia = builtins.any (f: f.devices.nvidia) all;
      needsCdi = builtins.any (f: f.devices.cdiDevices != [ ]) all;
      # user name -> podmanUser (name, uid, home, runtimeDir, manager) for rootless instances
      # (rules.nix: one uid per user; instances without a user of their own share one).
      users = podmanUsers;
      # render-units' setup-users.sh for hosts without NixOS (there, users.users does it): creates
      # the rootless users with their uids, subordinate ids and lingering (../scripts/setup-users.sh);
      # null when no instance runs rootless.
      setupUsersScript =
        if podmanUsers == { } then
          null
        else
          "#!${shell}\n${scriptBody "setup-users"}\n\nsetup_users ${
            builtins.concatStringsSep " " (
              # names and homes are [a-z0-9_/.-] (rules.nix' user name rule): no shell quoting needed
              map (u: "${u.name} ${toString u.uid} ${u.home}") (
                builtins.attrValues podmanUsers
              )
            )
          }\n";
      # Script files for hosts without NixOS: <name>.sh -> text, as `pkgs.writeShellScript`
      # would write it with `shell` as its interpreter.
      scriptFiles = listToAttrs (
        map (name: {
          name = "${name}.sh";
          value = "#!${shell}\n${scriptBodies.${name}}\n";
        }) scriptNames
      );
    };
}
