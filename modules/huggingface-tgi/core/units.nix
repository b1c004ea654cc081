# One instance -> its facts (data) and its two units. Argv and unit text are rendered from the
# facts here; the NixOS module, `tgi-nix` and the VM harness read the facts, never the text.
let
  inherit (builtins) map;
  inherit (import ./prelude.nix)
    optional
    optionalAttrs
    optionals
    unique
    ;
  systemd = import ./systemd.nix;
  network = import ./network.nix;
  image = import ./image.nix;
  hardening = import ./hardening.nix;
  users = import ./users.nix;
  podmanArgv = import ./podman.nix;
  inherit (podmanArgv) health;
  inherit (systemd) execLine;

  unitPrefix = "huggingface-tgi-";
  stateRoot = "/var/lib/huggingface-tgi";
  # NixOS's hardware.nvidia-container-toolkit writes /run/cdi/nvidia-container-toolkit.json here.
  nvidiaCdiGenerator = "nvidia-container-toolkit-cdi-generator.service";

  inherit (import ./restart.nix) restartPolicy imageRetry keysSince;

in
{
  inherit unitPrefix stateRoot restartPolicy keysSince nvidiaCdiGenerator;

  instance =
    {
      cdiGenerator,
      podman,
      setpriv,
      script,
      systemdVersion,
    }:
    name: inst:
    let
      unitName = "${unitPrefix}${name}";
      imageUnitName = "${unitPrefix}${name}-image";
      modelUnitName = "${unitPrefix}${name}-model";
      containerName = unitName;
      cacheDir = if inst.cacheDir == null then "${stateRoot}/${name}" else inst.cacheDir;
      runtimeDir = "/run/${unitName}";
      cidFile = "${runtimeDir}/ctr-id";
      net = network.facts { inherit (inst) listenAddress port openFirewall; };
      parsedImage = image.parse inst.image;
      imageRef =
        if parsedImage != null then
          parsedImage
        else
          {
            # an invalid reference (rules.nix reports it); facts stay total
            reference = inst.image;
            name = inst.image;
            registry = null;
            repository = inst.image;
            tag = null;
            digest = null;
            version = "latest";
            pinned = false;
          };
      timeout = systemd.parseTimespan inst.startTimeout;
      gpu = inst.gpus != null && inst.gpus != [ ];
      cdiDevices =
        (
          if inst.gpus == "all" then
            [ "nvidia.com/gpu=all" ]
          else
            map (i: "nvidia.com/gpu=${toString i}") (if inst.gpus == null then [ ] else inst.gpus)
        )
        ++ inst.cdiDevices;
      localModel = builtins.match "/.*" inst.model != null;
      # A Hub model downloaded by its own unit; the server then runs offline.
      modelUnit = inst.downloadModel && !localModel;
      # The Hugging Face hub cache layout under HF_HOME=/data (TGI-FACTS.md).
      modelCacheDir = "${cacheDir}/hub/models--${builtins.replaceStrings [ "/" ] [ "--" ] inst.model}";
      modelRuntimeDir = "/run/${modelUnitName}";
      stallTimeout = systemd.parseTimespan inst.downloadStallTimeout;
      stallSec = if stallTimeout == null || stallTimeout.sec == null then 600 else stallTimeout.sec;
      # Seconds between two measurements of the download (STATUS=, stall detection).
      downloadPollSec = 5;
      # How long podman waits for TGI after SIGTERM (TGI's own graceful termination is 90 s).
      stopTimeoutSec = 90;
      shmSizeBytes = podmanArgv.sizeBytes inst.shmSize;

      # Rootless (users.nix: unless rootful): podman runs as the user, with its storage in `home`
      # and its runtime state (and the systemd user manager that runs the health-check timers)
      # under /run/user/<uid>.
      userName = users.userOf inst;
      rootless = userName != null;
      uid = toString (users.uidOf inst);
      podmanUser =
        if rootless then
          {
            name = userName;
            uid = users.uidOf inst;
            home = "${stateRoot}/.rootless/${userName}";
            runtimeDir = "/run/user/${uid}";
            manager = "user@${uid}.service";
          }
        else
          null;
      owner = if rootless then userName else "root";

      # Secret files: root-only on the host. A rootful podman reads the environment file itself; a
      # rootless one reads a user-only copy that root puts in the unit's runtime directory at each
      # start (not LoadCredential=: podman reads the file after joining the user's namespaces,
      # where the credentials mount denies it, measured). TGI's --api-key comes from API_KEY in its
      # environment: root writes the key file's first line as such a file (no argv carries it).
      secrets = {
        inherit (inst) environmentFile apiKeyFile;
        podmanEnvironmentFile =
          if inst.environmentFile == null then
            null
          else if rootless then
            "${runtimeDir}/environment"
          else
            inst.environmentFile;
        apiKeyEnvironmentFile = if inst.apiKeyFile == null then null else "${runtimeDir}/api-key";
      };

      inherit
        (podmanArgv.argv {
          inherit
            name
            inst
            containerName
            cidFile
            cacheDir
            net
            cdiDevices
            localModel
            secrets
            stopTimeoutSec
            ;
          offline = modelUnit;
        })
        launcherWords
        podmanWords
        ;

      # The token reaches the downloader as it reaches the server: the same file, for a rootless
      # instance a user-only copy in the model unit's own runtime directory.
      downloadEnvironmentFile =
        if inst.environmentFile == null then
          null
        else if rootless then
          "${modelRuntimeDir}/environment"
        else
          inst.environmentFile;
      downloadWords = podmanArgv.download {
        inherit name inst cacheDir;
        containerName = modelUnitName;
        environmentFile = downloadEnvironmentFile;
      };

      launcherArgs = map (w: w.word) launcherWords;
      podmanArgs = map (w: w.word) podmanWords ++ [ inst.image ] ++ launcherArgs;

      # Run as root without the sandbox ("+"), dropping to the user: create the user's namespaces
      # (podman's pause process) if they do not exist yet, or just join them. Both units need it.
      userNamespace = optional rootless "+${
        execLine [
          setpriv
          "--reuid=${uid}"
          "--regid=${uid}"
          "--init-groups"
          podman
          "unshare"
          "true"
        ]
      }";

      restart = restartPolicy systemdVersion;

      # gpu: whether the unit may open the NVIDIA device nodes (the image unit never needs them)
      sandboxFor =
        gpu:
        hardening.common
        // (
          if rootless then
            hardening.rootless {
              inherit gpu cacheDir;
              inherit (podmanUser) home runtimeDir;
              user = userName;
            }
          else
            hardening.rootful {
              inherit gpu cacheDir;
              inherit (inst) port;
            }
        );
      sandbox = sandboxFor gpu;

      # What a rootless unit needs from the user's systemd manager and its runtime directory.
      rootlessEnvironment = optionalAttrs rootless {
        HOME = podmanUser.home;
        XDG_RUNTIME_DIR = podmanUser.runtimeDir;
      };

      # Rootless podman cannot read the root-only token file: root ("+", outside the sandbox) copies it
      # to a user-only file in the unit's runtime directory first.
      copyEnvFile =
        dest:
        optional (rootless && inst.environmentFile != null) "+${
          execLine [
            (script "copy-env-file")
            inst.environmentFile
            dest
            userName
          ]
        }";

      mainUnit = {
        description = "Hugging Face TGI instance ${name} (${inst.model})";
        documentation = [ "https://huggingface.co/docs/text-generation-inference" ];
        after = [
          "network-online.target"
          "systemd-tmpfiles-setup.service"
          "${imageUnitName}.service"
        ]
        ++ optional modelUnit "${modelUnitName}.service"
        # The CDI spec must exist before a GPU container starts (nixpkgs #353059).
        ++ optional (gpu && cdiGenerator != null) cdiGenerator
        ++ optional rootless podmanUser.manager;
        wants = [ "network-online.target" ] ++ optional (gpu && cdiGenerator != null) cdiGenerator;
        # The user manager runs podman's health-check timers (liveness; podman #12778).
        requires = [ "${imageUnitName}.service" ] ++ optional modelUnit "${modelUnitName}.service" ++ optional rootless podmanUser.manager;
        partOf = [ ];
        wantedBy = [ "multi-user.target" ];
        environment = {
          # Lets podman attribute the container to this unit (and its health-check timers).
          PODMAN_SYSTEMD_UNIT = "%n";
        }
        // rootlessEnvironment;
        # Back off instead of hammering a broken model forever; `systemctl reset-failed` re-arms.
        unitConfig = restart.unit;
        serviceConfig = {
          Type = "notify";
          # podman (not the main PID after fork) sends READY=1 once the container runs
          # (--sdnotify=conmon); wait-ready's STATUS= lines come from ExecStartPost=.
          NotifyAccess = "all";
          # podman run stays in the foreground as the main process; see docs/design.md for why the
          # detached `run -d` pattern leaks network state once the unit has a mount namespace.
          ExecStart = execLine ([ podman ] ++ podmanArgs);
          # Active only once /health answers 200 on the published address, polled from the host
          # every 0.25 s; fails at once when the container exits first. TimeoutStartSec= bounds it.
          # Then podman's health check runs once, handing over to liveness at once (wait-ready.sh).
          ExecStartPost = execLine [
            (script "wait-ready")
            net.reachableHost
            (toString inst.port)
            unitName
            podman
            containerName
          ];
          ExecStopPost = [
            # Rootless networking (pasta) lives in the container's user namespace and dies with it;
            # rootful netavark state may need the container's netns re-attached first.
            (execLine (
              if rootless then
                [
                  podman
                  "rm"
                  "--force"
                  "--ignore"
                  "--cidfile=${cidFile}"
                ]
              else
                [
                  (script "remove-container")
                  podman
                  cidFile
                  unitName
                ]
            ))
            (execLine [
              (script "failure-report")
              unitName
              inst.startTimeout
            ])
          ];
          RuntimeDirectory = unitName;
          RuntimeDirectoryMode = "0700";
          # Only podman gets SIGTERM; it forwards it to the container and waits for a clean exit.
          KillMode = "mixed";
          # 143 = 128 + SIGTERM: podman's exit status after a requested stop.
          SuccessExitStatus = [
            "0"
            "143"
          ];
          TimeoutStartSec = inst.startTimeout;
          TimeoutStopSec = 120;
          Restart = "on-failure";
        }
        # First retry soon (a crashed container is back quickly), then back off to 5 min.
        // restart.service
        // sandbox
        // {
          # "+": as root outside the sandbox, which may read the root-only secret files
          ExecStartPre =
            userNamespace ++ copyEnvFile secrets.podmanEnvironmentFile
            ++ optional (inst.apiKeyFile != null) "+${
              execLine [
                (script "write-api-key-env")
                inst.apiKeyFile
                secrets.apiKeyEnvironmentFile
                "${owner}:${owner}"
                unitName
              ]
            }";
        };
      };

      imageUnit = {
        description = "Container image for Hugging Face TGI instance ${name}";
        documentation = [ ];
        after = optionals (inst.imageFile == null) [ "network-online.target" ] ++ optional rootless podmanUser.manager;
        wants = optionals (inst.imageFile == null) [ "network-online.target" ];
        requires = optional rootless podmanUser.manager;
        partOf = [ ];
        wantedBy = [ ];
        environment = rootlessEnvironment;
        unitConfig = {
          inherit (imageRetry) StartLimitIntervalSec StartLimitBurst;
        };
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
          # A multi-GB pull must never count against the main unit's start timeout (the start
          # limit above bounds the retries, not the pull).
          TimeoutStartSec = "infinity";
          ExecStartPre = userNamespace;
          ExecStart = execLine (podmanArgv.fetchImage { inherit podman script inst; });
          ExecStopPost = execLine [
            (script "failure-report")
            imageUnitName
            inst.startTimeout
            inst.image
          ];
          Restart = "on-failure";
          inherit (imageRetry) RestartSec;
        }
        // restart.imageService
        # pulling or loading an image opens no GPU device node
        // removeAttrs (sandboxFor false) [
          "ReadWritePaths"
          "IPAddressDeny"
        ]
        // {
          ReadWritePaths =
            if rootless then
              (sandboxFor false).ReadWritePaths
            else
              [
                "/var/lib/containers"
                "/run"
                "/var/tmp"
              ];
        };
      };

      # Downloads the model before the server starts (only with modelUnit). Its start has no fixed
      # bound: the script extends the timeout while bytes arrive and fails after a stall.
      downloadUnit = {
        description = "Model ${inst.model} for Hugging Face TGI instance ${name}";
        documentation = [ ];
        after = [
          "network-online.target"
          "systemd-tmpfiles-setup.service"
          "${imageUnitName}.service"
        ]
        ++ optional rootless podmanUser.manager;
        wants = [ "network-online.target" ];
        requires = [ "${imageUnitName}.service" ] ++ optional rootless podmanUser.manager;
        partOf = [ ];
        wantedBy = [ ];
        environment = rootlessEnvironment;
        unitConfig = { };
        serviceConfig = {
          # The script (main process) sends READY=1 once the model is complete; systemd-notify,
          # its child, sends the progress: NotifyAccess=all (a rootless sender cannot claim the
          # script's PID).
          Type = "notify";
          NotifyAccess = "all";
          RemainAfterExit = true;
          ExecStart = execLine (
            [
              (script "model-download")
              modelCacheDir
              (toString stallSec)
              (toString downloadPollSec)
              name
              inst.downloadStallTimeout
              modelUnitName
              podman
            ]
            ++ map (w: w.word) downloadWords
          );
          ExecStopPost = execLine [
            podman
            "rm"
            "--force"
            "--ignore"
            modelUnitName
          ];
          RuntimeDirectory = modelUnitName;
          RuntimeDirectoryMode = "0700";
          # The backstop if the script itself hangs; it extends this while bytes arrive.
          TimeoutStartSec = "${toString (stallSec + 2 * downloadPollSec + 60)}s";
          TimeoutStopSec = 30;
        }
        # no GPU device node: the downloader only writes files
        // sandboxFor false
        // {
          ExecStartPre =
            userNamespace ++ copyEnvFile downloadEnvironmentFile;
        };
      };

      units = {
        ${unitName} = mainUnit;
        ${imageUnitName} = imageUnit;
      }
      // optionalAttrs modelUnit { ${modelUnitName} = downloadUnit; };
    in
    {
      inherit
        name
        unitName
        imageUnitName
        containerName
        rootless
        podmanUser
        secrets
        health
        launcherArgs
        podmanArgs
        podmanWords
        launcherWords
        downloadWords
        units
        ;
      serviceName = "${unitName}.service";
      imageServiceName = "${imageUnitName}.service";
      # The model unit (null: none, for a local model or downloadModel = false).
      modelServiceName = if modelUnit then "${modelUnitName}.service" else null;
      model = {
        id = inst.model;
        inherit (inst) revision;
        local = localModel;
        # downloaded by the model unit; the server runs with HF_HUB_OFFLINE=1
        downloaded = modelUnit;
        # what the server's container gets for it (besides the instance's environment)
        serverEnvironment = podmanArgv.offlineEnvironment modelUnit;
        # where the weights land on the host (the hub cache layout); null for a local model
        cacheDir = if localModel then null else modelCacheDir;
        stallTimeout = {
          text = inst.downloadStallTimeout;
          sec = stallSec;
        };
        # The downloader's arguments after the image (render-k8s' initContainer runs the same).
        downloaderArgs = map (w: w.word) (podmanArgv.downloader inst);
      };
      image = imageRef // {
        inherit (inst) pull;
        file = if inst.imageFile == null then null else toString inst.imageFile;
      };
      network = net;
      # The same launcher in a Kubernetes pod (render-k8s), on an unprivileged port.
      kubernetes = {
        containerPort = network.kubernetesContainerPort;
        launcherArgs = map (w: w.word) (
          podmanArgv.launcher {
            inherit inst;
            containerPort = network.kubernetesContainerPort;
          }
        );
      };
      startTimeout = {
        text = inst.startTimeout;
        sec = if timeout == null then null else timeout.sec;
        infinite = timeout != null && timeout.infinite;
      };
      devices = {
        inherit (inst) gpus;
        inherit cdiDevices;
        nvidia = gpu;
      };
      paths = {
        inherit cacheDir runtimeDir cidFile;
        containerCache = "/data";
      };
      container = {
        inherit (inst) shmSize environment;
        inherit shmSizeBytes stopTimeoutSec;
        hardening = hardening.container;
      };
      tmpfilesRules = unique (
        [ "d ${stateRoot} 0755 root root - -" ]
        ++ optionals rootless [
          "d ${stateRoot}/.rootless 0755 root root - -"
          "d ${podmanUser.home} 0700 ${owner} ${owner} - -"
        ]
        ++ [ "d ${cacheDir} 0750 ${owner} ${owner} - -" ]
      );
      unitFiles = builtins.mapAttrs (_: systemd.toUnitFile) units;
    };
}
