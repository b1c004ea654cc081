# Guarantees checked on what is finally rendered, whatever option produced it: the complete podman
# and launcher argv (each word tagged with the option it came from) and the unit texts. An option
# that reaches the same place by another path (extraArgs, extraPodmanArgs, environment) cannot get
# around them. Findings have the shape of rules.nix's.
let
  inherit (builtins)
    any
    attrNames
    concatMap
    elem
    elemAt
    filter
    genList
    head
    length
    match
    split
    stringLength
    substring
    ;
  inherit (import ./prelude.nix)
    afterFirst
    hasPrefix
    optional
    unique
    ;
  rules = import ./rules.nix;

  # Launcher flags the module sets from options; passing them in extraArgs would serve another
  # model, port or key than the options say. flag -> the option to use instead.
  managedLauncherFlags = {
    "--model-id" = "model";
    "--revision" = "revision";
    "--port" = "port";
    "-p" = "port";
    "--hostname" = "listenAddress";
    "--api-key" = "apiKeyFile";
    "--num-shard" = "numShard";
    "--sharded" = "numShard";
    "--quantize" = "quantize";
    "--dtype" = "dtype";
    "--max-concurrent-requests" = "maxConcurrentRequests";
    "--max-input-tokens" = "maxInputTokens";
    "--max-input-length" = "maxInputTokens";
    "--max-total-tokens" = "maxTotalTokens";
    "--max-batch-prefill-tokens" = "maxBatchPrefillTokens";
    "--max-batch-total-tokens" = "maxBatchTotalTokens";
    "--max-waiting-tokens" = "maxWaitingTokens";
    "--trust-remote-code" = "trustRemoteCode";
    "--huggingface-hub-cache" = "cacheDir";
    "--usage-stats" = "usageStats";
  };
  # Every launcher flag is also read from its SCREAMING_SNAKE variable (clap `env`).
  envNameOf = flag: rules.upper (builtins.replaceStrings [ "-" ] [ "_" ] (substring 2 (stringLength flag) flag));
  managedEnv = builtins.listToAttrs (
    map (flag: {
      name = envNameOf flag;
      value = managedLauncherFlags.${flag};
    }) (filter (f: hasPrefix "--" f) (attrNames managedLauncherFlags))
  );

  # podman run flags that the units set themselves: never from extraPodmanArgs.
  managedPodmanFlags =
    let
      liveness = "the units set the liveness health check (an unhealthy server is killed and restarted)";
    in
    {
    "--name" = "the container name is huggingface-tgi-<name>";
    "--cidfile" = "ExecStopPost finds the container by the unit's cidfile";
    "--sdnotify" = "the unit's readiness depends on it";
    "--detach" = "podman must stay in the foreground as the unit's main process";
    "-d" = "podman must stay in the foreground as the unit's main process";
    "--replace" = "the units always replace a leftover container";
    "--rm" = "the units always remove the container";
    "--pull" = "set pull (the image unit fetches the image)";
    "--shm-size" = "set shmSize";
    "--health-cmd" = liveness;
    "--health-interval" = liveness;
    "--health-timeout" = liveness;
    "--health-retries" = liveness;
    "--health-start-period" = liveness;
    "--health-startup-cmd" = liveness;
    "--health-startup-interval" = liveness;
    "--health-startup-timeout" = liveness;
    "--health-startup-retries" = liveness;
    "--health-startup-success" = liveness;
    "--health-on-failure" = liveness;
    "--no-healthcheck" = liveness;
  };

  # podman run flags that undo the container's hardening or the network design. Refused from
  # extraPodmanArgs unless the instance sets allowUnsafePodmanArgs. name -> value -> reason or null.
  unsafePodmanFlags =
    let
      always = reason: _: reason;
      hostNs = what: v: if v == "host" then "shares the host's ${what} namespace with the container" else null;
    in
    {
      "--privileged" = v: if v == "false" then null else "gives the container every capability and the host's devices";
      "--network" = always "replaces the instance's network (published on listenAddress:port only)";
      "--net" = always "replaces the instance's network (published on listenAddress:port only)";
      "--pid" = hostNs "PID";
      "--ipc" = hostNs "IPC";
      "--uts" = hostNs "UTS";
      "--cgroupns" = hostNs "cgroup";
      "--userns" = always "changes the container's user namespace";
      "--cap-add" = always "gives capabilities to a container that runs with none (--cap-drop=all)";
      "--security-opt" =
        v:
        if
          match "(seccomp[=:]unconfined|apparmor[=:]unconfined|label[=:](disable|type:spc_t)|no-new-privileges[=:]false|unmask[=:].*|systempaths[=:]unconfined|mask[=:])" v
          != null
        then
          "switches off a confinement of the container (${v})"
        else
          null;
      "--device" =
        v:
        if match "[a-z0-9.-]+\\.[a-z]+/[a-zA-Z0-9_.-]+=[a-zA-Z0-9_.:-]+" v != null then
          null
        else
          "passes a host device outside CDI; use gpus or cdiDevices (CDI names)";
      "--publish" = always "publishes a port beside port/listenAddress";
      "-p" = always "publishes a port beside port/listenAddress";
      "--publish-all" = always "publishes every exposed port";
      "-P" = always "publishes every exposed port";
      "--env-file" = always "reads variables from a file the module does not manage; use environmentFile";
      "--env-host" = always "copies the host's environment (and any secret in it) into the container";
      "--volume" = volumeOverData;
      "-v" = volumeOverData;
      "--mount" =
        v:
        if match "(.*,)?(dst|destination|target)=/data/?(,.*)?" v != null then
          "mounts over /data, the model cache; use cacheDir"
        else
          null;
      "--pids-limit" = always "changes the container's process limit (--pids-limit=8192)";
    };
  volumeOverData =
    v:
    if match "[^:]*:/data/?(:.*)?" v != null || v == "/data" then
      "mounts over /data, the model cache; use cacheDir"
    else
      null;

  # Flags (of either table) that take a value from the next word when written without '='.
  takesValue = [
    "--network"
    "--net"
    "--pid"
    "--ipc"
    "--uts"
    "--cgroupns"
    "--userns"
    "--cap-add"
    "--security-opt"
    "--device"
    "--publish"
    "-p"
    "--env"
    "-e"
    "--env-file"
    "--volume"
    "-v"
    "--mount"
    "--pids-limit"
    "--name"
    "--cidfile"
    "--sdnotify"
    "--pull"
    "--shm-size"
    "--label"
    "-l"
    "--memory"
    "-m"
    "--user"
    "-u"
    "--workdir"
    "-w"
    "--hostname"
    "-h"
    "--attach"
    "-a"
  ];
  # podman's one-letter flags; a word like -dit bundles several, -p8080:80 carries a value.
  shortTakesValue = [
    "a"
    "e"
    "h"
    "l"
    "m"
    "p"
    "u"
    "v"
    "w"
  ];

  # words: [ { word, option } ] -> [ { flag, value, option } ] (value null for a bare flag).
  parseFlags =
    words:
    let
      n = length words;
      at = i: elemAt words i;
      nextWord = i: if i + 1 < n then (at (i + 1)).word else null;
      longFlag =
        i: w:
        let
          name = head (match "(--[^=]*).*" w.word);
          inline = afterFirst "=" w.word;
        in
        [
          {
            flag = name;
            value = if inline != null then inline else if elem name takesValue then nextWord i else null;
            inherit (w) option;
          }
        ];
      shortFlags =
        i: w:
        let
          letters = substring 1 (stringLength w.word) w.word;
          go =
            k:
            if k >= stringLength letters then
              [ ]
            else
              let
                c = substring k 1 letters;
                rest = substring (k + 1) (stringLength letters) letters;
              in
              if elem c shortTakesValue then
                [
                  {
                    flag = "-${c}";
                    value =
                      if rest == "" then
                        nextWord i
                      else if hasPrefix "=" rest then
                        substring 1 (stringLength rest) rest
                      else
                        rest;
                    inherit (w) option;
                  }
                ]
              else
                [
                  {
                    flag = "-${c}";
                    value = null;
                    inherit (w) option;
                  }
                ]
                ++ go (k + 1);
        in
        go 0;
    in
    concatMap (
      i:
      let
        w = at i;
      in
      if hasPrefix "--" w.word && w.word != "--" then
        longFlag i w
      else if match "-[A-Za-z].*" w.word != null then
        shortFlags i w
      else
        [ ]
    ) (genList (i: i) n);

  # KEY of a podman --env value KEY=VALUE (or KEY, taken from the host).
  envKey = v: head (match "([^=]*).*" v);

  at = name: option: message: {
    path = rules.instancePath name option;
    inherit message;
  };

  # Anything shaped like a credential: Hugging Face, OpenAI-style, GitHub, AWS and Slack tokens,
  # JSON web tokens and private keys.
  secretShapes = [
    "hf_[A-Za-z0-9]{30,}"
    "sk-[A-Za-z0-9_-]{20,}"
    "gh[pousr]_[A-Za-z0-9]{30,}"
    "github_pat_[A-Za-z0-9_]{30,}"
    "AKIA[0-9A-Z]{16}"
    "xox[abprs]-[A-Za-z0-9-]{10,}"
    "eyJ[A-Za-z0-9_-]{8,}\\.eyJ[A-Za-z0-9_-]{8,}\\."
    "-----BEGIN [A-Z ]*PRIVATE KEY-----"
  ];
  hasSecretShape = text: any (re: length (split re text) > 1) secretShapes;
  # Every string in an option value (lists and attribute sets included, names too).
  stringsOf =
    v:
    if builtins.isString v then
      [ v ]
    else if builtins.isList v then
      concatMap stringsOf v
    else if builtins.isAttrs v then
      attrNames v ++ concatMap (k: stringsOf v.${k}) (attrNames v)
    else
      [ ];
in
{
  inherit managedLauncherFlags managedPodmanFlags secretShapes;

  # name, inst: the instance's options; podmanWords / launcherWords: the final argv of
  # `podman run` before the image and of the launcher after it, as [ { word, option } ] (option
  # null for words the core generates itself); texts: every unit text rendered for the instance.
  check =
    {
      name,
      inst,
      podmanWords,
      launcherWords,
      # the model unit's `podman run` words (empty without a model unit)
      downloadWords ? [ ],
      # the model unit downloads the model and the server runs with HF_HUB_OFFLINE=1: an option
      # setting HF_HUB_OFFLINE would undo that (or switch off the model unit's online attempt)
      offlineManaged ? false,
      texts,
    }:
    let
      # The server's and the downloader's containers both carry the user's words (environment):
      # each finding once.
      podmanFlags = unique (parseFlags podmanWords ++ parseFlags downloadWords);
      launcherFlags = parseFlags launcherWords;
      fromUser = f: f.option != null;

      launcherFindings = concatMap (
        f:
        let
          use = managedLauncherFlags.${f.flag} or null;
        in
        optional (use != null && fromUser f && f.option != use) (
          at name f.option "${f.flag} is set by the module from ${use}; set services.huggingface-tgi.instances.${name}.${use} instead of passing it in ${f.option}"
        )
      ) launcherFlags;

      podmanFindings = concatMap (
        f:
        let
          managed = managedPodmanFlags.${f.flag} or null;
          unsafe = if unsafePodmanFlags ? ${f.flag} then unsafePodmanFlags.${f.flag} f.value else null;
        in
        if !fromUser f then
          [ ]
        else if managed != null then
          [ (at name f.option "${f.flag} is managed by the module (${managed}); remove it from ${f.option}") ]
        else if unsafe != null && !inst.allowUnsafePodmanArgs then
          [
            (at name f.option "${f.flag}${
              if f.value == null then "" else " ${f.value}"
            } ${unsafe}; remove it, or set services.huggingface-tgi.instances.${name}.allowUnsafePodmanArgs = true if you accept that")
          ]
        else
          [ ]
      ) podmanFlags;

      # The container's environment, however it was set: secrets only through environmentFile /
      # apiKeyFile, and no variable that would override a managed launcher flag.
      envFindings = concatMap (
        f:
        let
          key = envKey (if f.value == null then "" else f.value);
        in
        optional ((f.flag == "--env" || f.flag == "-e") && f.option != null) (
          if rules.isSecretName key then
            at name f.option "${key} looks like a secret; put it in environmentFile (a root-only file), never in the unit, argv or the Nix store"
          else if key == "HF_HUB_OFFLINE" && offlineManaged then
            at name f.option "HF_HUB_OFFLINE is set by the module: with downloadModel the model unit downloads the model and the server runs with HF_HUB_OFFLINE=1; remove it from ${f.option}, or set services.huggingface-tgi.instances.${name}.downloadModel = false to let TGI download (and contact the Hub) itself"
          else if managedEnv ? ${key} then
            at name f.option "${key} would set the launcher's ${managedEnv.${key}} behind the module's back; set services.huggingface-tgi.instances.${name}.${managedEnv.${key}} instead"
          else
            null
        )
      ) podmanFlags;

      # Nothing shaped like a credential in argv or any unit text; name the option it came from.
      leaking = filter (o: any hasSecretShape (stringsOf inst.${o})) (attrNames inst);
      secretFindings =
        if !(any hasSecretShape texts) then
          [ ]
        else if leaking != [ ] then
          map (
            o:
            at name o "contains something shaped like a secret (token, key); secrets belong in environmentFile or apiKeyFile, never in the unit, argv or the Nix store"
          ) leaking
        else
          [
            {
              path = "instances.${rules.segment name}";
              message = "a rendered unit contains something shaped like a secret (token, key); secrets belong in environmentFile or apiKeyFile";
            }
          ];
    in
    filter (f: f != null) (launcherFindings ++ podmanFindings ++ envFindings) ++ secretFindings;
}
