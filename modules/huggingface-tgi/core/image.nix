# Container image references: [registry[:port]/]path[:tag][@sha256:<64 hex>] (the distribution
# grammar). The one parser: checks.nix validates with it, the units, the integrations and
# `tgi-nix` (doctor, render-k8s) read its parts.
let
  inherit (builtins) elemAt match;
  component = "[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*";
  domainLabel = "[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?";
  domain = "${domainLabel}(\\.${domainLabel})*(:[0-9]+)?";
  tag = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";
  digest = "sha256:[a-f0-9]{64}";
  # groups: 1 whole name, 2 registry (with '/'), ..., then tag and digest (see `parse`)
  referenceRe = "((${domain}/)?${component}(/${component})*)(:(${tag}))?(@(${digest}))?";
in
{
  # -> { reference, name, registry, repository, tag, digest, version, pinned } or null.
  parse =
    reference:
    let
      m = match referenceRe reference;
      # Count the groups above: name=0, registry=1, [domain label groups...]; take from the end.
      n = builtins.length m;
      name = elemAt m 0;
      registryPart = elemAt m 1;
      tagValue = elemAt m (n - 3);
      digestValue = elemAt m (n - 1);
      # A first path component without '.', ':' or "localhost" is a Docker Hub namespace, not a host.
      registry =
        if registryPart == null then
          null
        else
          let
            host = builtins.substring 0 (builtins.stringLength registryPart - 1) registryPart;
          in
          if match ".*[.:].*" host != null || host == "localhost" then host else null;
      repository =
        if registry == null then
          name
        else
          builtins.substring (builtins.stringLength registry + 1) (builtins.stringLength name) name;
    in
    if m == null then
      null
    else
      {
        inherit reference name registry repository;
        tag = tagValue;
        digest = digestValue;
        # What a dashboard shows as the engine version: the digest when pinned by digest, else
        # the tag ("latest" when there is none).
        version =
          if digestValue != null then
            digestValue
          else if tagValue != null then
            tagValue
          else
            "latest";
        pinned = digestValue != null || (tagValue != null && tagValue != "latest");
      };
}
