# The validation rules of an instance's option values, written once. The NixOS module turns every
# finding into an assertion (services.huggingface-tgi.<path>: <message>); `tgi-nix validate`
# evaluates the same function and exits 2 with instances.<path>: <message>. Python keeps only
# parsing, types, file positions and "did you mean".
#
# A finding: { path = "instances.<name>.<option>"; message = "..."; }.
let
  inherit (builtins)
    any
    attrNames
    compareVersions
    concatMap
    elem
    elemAt
    filter
    genList
    head
    isList
    length
    match
    stringLength
    toJSON
    ;
  inherit (import ./prelude.nix)
    duplicates
    hasPrefix
    optional
    optionals
    ;
  network = import ./network.nix;
  users = import ./users.nix;
  image = import ./image.nix;
  systemd = import ./systemd.nix;

  storeDir = "/nix/store";
  # A value in a message: JSON, with the Unicode line breaks JSON leaves alone (NEL, LS, PS)
  # escaped too, so that one finding stays one line wherever it is printed or split.
  unicodeBreaks = [
    "0085"
    "2028"
    "2029"
  ];
  show =
    v:
    builtins.replaceStrings (map (c: builtins.fromJSON "\"\\u${c}\"") unicodeBreaks) (
      map (c: "\\u${c}") unicodeBreaks
    ) (toJSON v);

  # TGI's released versions and the first release serving each model family (offline; see the
  # file's _comment and scripts/refresh-tgi-releases.py).
  tgi = builtins.fromJSON (builtins.readFile ./tgi-releases.json);
  latestRelease = elemAt tgi.releases (length tgi.releases - 1);
  isOfficialImage = ref: ref != null && ref.registry == tgi.image.registry && ref.repository == tgi.image.repository;
  # The version a tag names: "3.3.7", a variant such as "3.3.7-rocm" -> "3.3.7"; null for others
  # (latest, sha-<commit>, ...).
  versionOfTag =
    tag:
    let
      m = if tag == null then null else match "([0-9]+(\\.[0-9]+)*)(-.*)?" tag;
    in
    if m == null then null else head m;
  # The released versions next to an unknown one, to suggest.
  nearestReleases =
    version:
    let
      older = filter (r: compareVersions r version < 0) tgi.releases;
      newer = filter (r: compareVersions r version > 0) tgi.releases;
    in
    optional (older != [ ]) (elemAt older (length older - 1)) ++ optional (newer != [ ]) (head newer);
  # Model families (by Hub id) that `version` cannot serve: [ { name, since } ].
  unservedFamilies =
    model: version:
    concatMap (
      type:
      let
        family = tgi.families.${type};
        since = tgi.modelTypes.${type};
      in
      optional (match family.modelIdPattern model != null && compareVersions version since < 0) {
        inherit (family) name;
        inherit type since;
      }
    ) (attrNames tgi.families);
  gpusOverlap =
    a: b:
    a != null && b != null && a != [ ] && b != [ ] && (a == "all" || b == "all" || any (g: elem g b) a);

  # Instance names become huggingface-tgi-<name>.service, the container name and Kubernetes
  # object names, so they follow the strictest of those: an RFC 1035 label.
  instanceNameRe = "[a-z]([a-z0-9-]{0,38}[a-z0-9])?";
  # Hugging Face repo ids: owner/name of letters, digits, '-', '_', '.'; no "--" or "..".
  modelIdRe = "[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}";
  revisionRe = "[A-Za-z0-9][A-Za-z0-9._/-]{0,199}";
  sizeRe = "[1-9][0-9]*[bkmgBKMG]?";
  envNameRe = "[A-Za-z_][A-Za-z0-9_]*";
  cdiDeviceRe = "[a-z0-9.-]+\\.[a-z]+/[a-zA-Z0-9_.-]+=[a-zA-Z0-9_.:-]+";
  # A system user name that useradd (shadow) and NixOS accept.
  userNameRe = "[a-z_][a-z0-9_-]{0,31}";
  hasControl = s: match ".*\n.*" s != null;

  # Variables that carry secrets come from environmentFile, never from `environment` (which ends
  # up in the unit and the Nix store) or a podman --env.
  isSecretName =
    n: match "(.*_)?(TOKEN|SECRET|PASSWORD|API_KEY)" (upper n) != null || upper n == "HUGGING_FACE_HUB_TOKEN";
  upper =
    s:
    builtins.replaceStrings
      (builtins.genList (i: builtins.substring i 1 "abcdefghijklmnopqrstuvwxyz") 26)
      (builtins.genList (i: builtins.substring i 1 "ABCDEFGHIJKLMNOPQRSTUVWXYZ") 26)
      s;

  absolutePath =
    {
      what,
      allowStore,
    }:
    value:
    if !hasPrefix "/" value then
      "${what} must be an absolute path, got ${show value}; write it as /path/to/..."
    else if hasControl value then
      "${what} must not contain newlines"
    else if !allowStore && (value == storeDir || hasPrefix "${storeDir}/" value) then
      "${what} ${show value} is in the Nix store, which is world-readable and immutable; keep it outside /nix/store (e.g. under /var/lib or /run/secrets)"
    else
      null;

  # An attribute name as a path segment: quoted (JSON) unless it is a plain word, so that a name
  # with dots, spaces or braces keeps the path unambiguous.
  segment = s: if match "[A-Za-z0-9_-]+" s != null then s else show s;
  instancePath = name: option: "instances.${segment name}.${option}";

  # [ option (message or null) ] -> findings
  findings =
    name: pairs:
    concatMap (
      p:
      optional (p.message != null) {
        path = instancePath name p.option;
        inherit (p) message;
      }
    ) pairs;
  rule = option: message: { inherit option message; };
  when = cond: message: if cond then message else null;
in
rec {
  inherit isSecretName upper instanceNameRe;

  # Rules on one instance's values (field and cross-field).
  instance =
    name: inst:
    let
      gpuList = if isList inst.gpus then inst.gpus else [ ];
      timespan = systemd.parseTimespan inst.startTimeout;
      podmanUser = users.userOf inst;
      rootless = podmanUser != null;
    in
    optional (match instanceNameRe name == null) {
      path = "instances.${segment name}";
      message = "instance name ${show name} is not allowed: use 1-40 lowercase letters, digits and '-', starting with a letter and not ending with '-' (it becomes the unit and container name huggingface-tgi-<name>)";
    }
    ++ findings name [
      (rule "model" (
        if hasPrefix "/" inst.model then
          absolutePath {
            what = "local model path";
            allowStore = true;
          } inst.model
        else
          when (
            match modelIdRe inst.model == null
            || match ".*(--|\\.\\.).*" inst.model != null
          ) "${show inst.model} is not a Hugging Face model id; write it as owner/name (e.g. deepseek-ai/DeepSeek-R1-Distill-Qwen-7B) or give an absolute path to local weights"
      ))
      (rule "revision" (
        when (
          inst.revision != null && match revisionRe inst.revision == null
        ) "${show inst.revision} is not a branch, tag or commit name (letters, digits, '._/-')"
      ))
      (rule "image" (
        when (image.parse inst.image == null) "${show inst.image} is not a container image reference; write registry/path:tag or registry/path@sha256:<64 hex>, e.g. ghcr.io/huggingface/text-generation-inference:3.3.7"
      ))
      (rule "imageFile" (
        if inst.imageFile == null then
          null
        else
          absolutePath {
            what = "imageFile";
            allowStore = true;
          } (toString inst.imageFile)
      ))
      (rule "listenAddress" (
        when (!network.isAddress inst.listenAddress) "${show inst.listenAddress} is not an IP address; use 127.0.0.1 (loopback), ::1, 0.0.0.0, :: or an address of this host (no host names, brackets or %zone)"
      ))
      (rule "gpus" (
        when (duplicates gpuList != [ ]) "gpus lists an index twice (${toString gpuList}); list each GPU once"
      ))
      (rule "cdiDevices" (
        let
          bad = filter (d: match cdiDeviceRe d == null) inst.cdiDevices;
        in
        when (bad != [ ]) "${show (builtins.head bad)} is not a CDI device name; write vendor.com/class=name"
      ))
      (rule "shmSize" (
        when (match sizeRe inst.shmSize == null) "${show inst.shmSize} is not a size; write a number with an optional unit b, k, m or g (e.g. 1g)"
      ))
      (rule "startTimeout" (
        when (timespan == null) "${show inst.startTimeout} is not a systemd time span; write e.g. 90s, 30min, 2h or infinity (each number at most 8 digits)"
      ))
      (rule "downloadStallTimeout" (
        let
          stall = systemd.parseTimespan inst.downloadStallTimeout;
        in
        when (
          stall == null || stall.infinite || stall.usec < 1000000
        ) "${show inst.downloadStallTimeout} is not a finite systemd time span of at least 1s; write e.g. 10min or 1h"
      ))
      (rule "environmentFile" (
        if inst.environmentFile == null then
          null
        else
          absolutePath {
            what = "environmentFile";
            allowStore = false;
          } inst.environmentFile
      ))
      (rule "apiKeyFile" (
        if inst.apiKeyFile == null then
          null
        else
          absolutePath {
            what = "apiKeyFile";
            allowStore = false;
          } inst.apiKeyFile
      ))
      (rule "cacheDir" (
        if inst.cacheDir == null then
          null
        else
          absolutePath {
            what = "cacheDir";
            allowStore = false;
          } inst.cacheDir
      ))
      (rule "user" (
        if inst.rootful && inst.user != null then
          "user ${show inst.user} runs rootless podman, but rootful = true runs it as root; remove user or rootful"
        else
          when (
            inst.user != null && (match userNameRe inst.user == null || inst.user == "root")
          ) "user ${show inst.user} is not a usable system user name: use 1-32 lowercase letters, digits, '_' and '-', starting with a letter or '_', and not root (null means the shared user ${show users.defaultUser})"
      ))
      (rule "environment" (
        let
          names = attrNames inst.environment;
          badName = filter (n: match envNameRe n == null) names;
          multiline = filter (n: hasControl inst.environment.${n}) names;
        in
        # (secret-looking names: guarantees.nix, on the container's final environment)
        if badName != [ ] then
          "${show (builtins.head badName)} is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)"
        else
          when (multiline != [ ]) "the value of ${builtins.head multiline} must not contain newlines"
      ))
      (rule "extraArgs" (
        when (any hasControl inst.extraArgs) "extra launcher arguments must not contain newlines"
      ))
      (rule "extraPodmanArgs" (
        when (any hasControl inst.extraPodmanArgs) "extra podman arguments must not contain newlines"
      ))
      # cross-field rules
      (rule "dtype" (
        when (
          inst.dtype != null && inst.quantize != null
        ) "dtype and quantize cannot be combined (TGI refuses it); remove dtype or quantize"
      ))
      (rule "maxTotalTokens" (
        when (
          inst.maxInputTokens != null && inst.maxTotalTokens != null && inst.maxTotalTokens <= inst.maxInputTokens
        ) "maxTotalTokens (${toString inst.maxTotalTokens}) must be greater than maxInputTokens (${toString inst.maxInputTokens}); raise maxTotalTokens or lower maxInputTokens"
      ))
      (rule "numShard" (
        if inst.numShard != null && isList inst.gpus && inst.numShard > length inst.gpus && inst.gpus != [ ] then
          "numShard (${toString inst.numShard}) is larger than the ${toString (length inst.gpus)} GPU(s) listed in gpus; list more GPUs or lower numShard"
        else
          when (
            inst.numShard != null && inst.numShard > 1 && (inst.gpus == null || inst.gpus == [ ])
          ) "numShard (${toString inst.numShard}) needs GPUs; set gpus or remove numShard"
      ))
      (rule "uid" (
        when (
          inst.rootful && inst.uid != null
        ) "uid ${toString inst.uid} is the rootless user's uid, but rootful = true runs podman as root; remove uid or rootful"
      ))
      (rule "port" (
        when (
          rootless && inst.port < 1024
        ) "port ${toString inst.port} is privileged, but this instance runs rootless (as user ${show podmanUser}) and publishes its port as that user; use a port of 1024 or more, or set rootful = true"
      ))
    ];

  # Rules across instances (enabled ones share the host's ports and users).
  spec =
    instances:
    let
      enabledNames = filter (n: instances.${n}.enable) (attrNames instances);
      # The first instance (by name) keeps a contested value; every later one is named.
      clashes =
        option: valueOf: describe:
        concatMap (
          i:
          let
            n = builtins.elemAt enabledNames i;
            v = valueOf instances.${n};
            earlier = filter (m: valueOf instances.${m} == v) (builtins.genList (j: builtins.elemAt enabledNames j) i);
          in
          optional (v != null && earlier != [ ]) {
            path = instancePath n option;
            message = describe v (builtins.head earlier);
          }
        ) (builtins.genList (i: i) (length enabledNames));
      # Rootless users across enabled instances: one uid per user, one user per uid (users.nix
      # derives a uid from the name; two names can still meet, and a set uid can meet either).
      userClashes =
        let
          rootlessNames = filter (n: users.userOf instances.${n} != null) enabledNames;
          userOf = n: users.userOf instances.${n};
          uidOf = n: users.uidOf instances.${n};
          uidText =
            n:
            if users.uidDerived instances.${n} then
              "uid ${toString (uidOf n)} (derived from the name ${show (userOf n)})"
            else
              "uid ${toString (uidOf n)}";
          check =
            i:
            let
              n = builtins.elemAt rootlessNames i;
              earlier = builtins.genList (j: builtins.elemAt rootlessNames j) i;
              sameUserOtherUid = filter (m: userOf m == userOf n && uidOf m != uidOf n) earlier;
              otherUserSameUid = filter (m: userOf m != userOf n && uidOf m == uidOf n) earlier;
            in
            if sameUserOtherUid != [ ] then
              [
                {
                  path = instancePath n "uid";
                  message = "user ${show (userOf n)} has ${uidText n} here but ${uidText (builtins.head sameUserOtherUid)} in instance ${show (builtins.head sameUserOtherUid)}; give the user one uid (set the same uid on both, or none)";
                }
              ]
            else
              optional (otherUserSameUid != [ ]) {
                path = instancePath n "uid";
                message = "user ${show (userOf n)} would get ${uidText n}, already the uid of user ${show (userOf (builtins.head otherUserSameUid))} (instance ${show (builtins.head otherUserSameUid)}); set uid to a free one";
              };
        in
        concatMap check (builtins.genList (i: i) (length rootlessNames));
    in
    clashes "port" (i: i.port) (
      v: other: "two enabled instances use the same port (${toString v}, also used by instance ${show other}); give each instance its own port"
    )
    ++ userClashes;

  # Accepted but questionable settings: { path, message } like findings, shown as warnings.
  warnings =
    name: inst:
    let
      ref = image.parse inst.image;
    in
    findings name [
      (rule "image" (
        when (
          ref != null && !ref.pinned
        ) "image ${show inst.image} is not pinned (latest or no tag); pin a release tag or an @sha256: digest"
      ))
      (rule "openFirewall" (
        when (
          inst.openFirewall && network.isAddress inst.listenAddress && (network.facts {
            inherit (inst) listenAddress port openFirewall;
          }).loopback
        ) "openFirewall is set but listenAddress is loopback, so the opened port serves nothing"
      ))
      (rule "trustRemoteCode" (
        when inst.trustRemoteCode "trustRemoteCode runs the model repository's code inside the container"
      ))
      # TGI release knowledge (tgi-releases.json), for the official image only.
      (rule "image" (
        let
          version = versionOfTag ref.tag;
          known = elem version tgi.releases;
          near = nearestReleases version;
        in
        if !isOfficialImage ref || ref.digest != null || ref.tag == null || ref.tag == "latest" then
          null
        else if version == null then
          "${show ref.tag} is not a TGI release tag; pin a released version such as ${latestRelease}"
        else if known then
          null
        else if compareVersions version latestRelease > 0 then
          "TGI ${version} is newer than every release this tgi-nix knows (up to ${latestRelease}, table of ${tgi.refreshed}); pin ${latestRelease}, or refresh core/tgi-releases.json with scripts/refresh-tgi-releases.py if ${version} was released since"
        else
          "TGI never released ${version}; the nearest releases are ${builtins.concatStringsSep " and " near} (latest ${latestRelease})"
      ))
      (rule "model" (
        let
          version = versionOfTag ref.tag;
          unserved = if isOfficialImage ref && version != null then unservedFamilies inst.model version else [ ];
          f = head unserved;
        in
        when (unserved != [ ]) "TGI ${version} (image ${show inst.image}) cannot serve ${f.name} models such as ${show inst.model}: model type ${f.type} arrived in TGI ${f.since}; pin ${f.since} or later in image (latest known: ${latestRelease})"
      ))
    ];

  # Questionable settings across instances (warnings).
  specWarnings =
    instances:
    let
      enabledNames = filter (n: instances.${n}.enable) (attrNames instances);
    in
    concatMap (
      i:
      let
        n = elemAt enabledNames i;
        inst = instances.${n};
        shared = filter (
          m:
          gpusOverlap instances.${m}.gpus inst.gpus && !(instances.${m}.allowGpuSharing && inst.allowGpuSharing)
        ) (genList (j: elemAt enabledNames j) i);
        other = head shared;
      in
      optional (shared != [ ]) {
        path = instancePath n "gpus";
        message = "gpus ${show inst.gpus} overlaps instance ${show other}'s gpus ${show instances.${other}.gpus}; each TGI server claims most of a GPU's memory, so one of them fails to load. Give each instance its own GPUs, or set allowGpuSharing on both when they are sized to share";
      }
    ) (genList (i: i) (length enabledNames));

  # Helpers for guarantees.nix.
  inherit findings rule when instancePath segment;
}
