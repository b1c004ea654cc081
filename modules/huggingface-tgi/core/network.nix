# Listen addresses: what counts as an IP address, how podman publishes on it and how this host
# reaches an instance published there. The one definition; probe, doctor, the integrations and
# render-k8s read the resulting facts.
let
  inherit (builtins) concatStringsSep genList match;
  octet = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
  ipv4 = "${octet}(\\.${octet}){3}";
  h = "[0-9A-Fa-f]{1,4}";
  # RFC 4291 text forms: 8 groups, or fewer with one "::", optionally ending in an IPv4 address.
  ipv6Forms = [
    "(${h}:){7}${h}"
    "(${h}:){1,7}:"
    "(${h}:){1,6}:${h}"
    "(${h}:){1,5}(:${h}){1,2}"
    "(${h}:){1,4}(:${h}){1,3}"
    "(${h}:){1,3}(:${h}){1,4}"
    "(${h}:){1,2}(:${h}){1,5}"
    "${h}:(:${h}){1,6}"
    ":((:${h}){1,7}|:)"
    "(${h}:){6}${ipv4}"
    "(${h}:){1,5}:${ipv4}"
    "(${h}:){1,4}:(${h}:){1}${ipv4}"
    "(${h}:){1,3}:(${h}:){1,2}${ipv4}"
    "(${h}:){1,2}:(${h}:){1,3}${ipv4}"
    "${h}::(${h}:){1,4}${ipv4}"
    "::(${h}:){0,5}${ipv4}"
  ];
  ipv6 = concatStringsSep "|" (map (f: "(${f})") ipv6Forms);
  isIPv4 = a: match ipv4 a != null;
  isIPv6 = a: match ipv6 a != null;
  # The unspecified addresses: published on every address of the host.
  wildcards = {
    "0.0.0.0" = "127.0.0.1";
    "::" = "::1";
  };
  bracket = a: if isIPv6 a then "[${a}]" else a;
in
rec {
  inherit isIPv4 isIPv6;
  isAddress = a: isIPv4 a || isIPv6 a;
  # The container's port: the TGI image sets PORT=80 and the launcher is told so explicitly.
  containerPort = 80;
  # The port TGI listens on in a Kubernetes pod (render-k8s): a pod has no podman sysctl that
  # opens port 80 to a process without CAP_NET_BIND_SERVICE, which `capabilities.drop: [ALL]`
  # removes, so TGI would fail to bind on runtimes that keep ports below 1024 privileged.
  kubernetesContainerPort = 8080;

  # -> the network facts of an instance.
  facts =
    {
      listenAddress,
      port,
      openFirewall,
    }:
    let
      wildcard = wildcards ? ${listenAddress};
      # How this host reaches the instance: loopback of the same family for a wildcard address.
      reachableHost = if wildcard then wildcards.${listenAddress} else listenAddress;
      endpoint = "${bracket reachableHost}:${toString port}";
    in
    {
      inherit
        listenAddress
        port
        containerPort
        wildcard
        reachableHost
        endpoint
        openFirewall
        ;
      family = if isIPv6 listenAddress then "ipv6" else "ipv4";
      loopback = match "127\\..*|::1" listenAddress != null;
      publish = "${bracket listenAddress}:${toString port}:${toString containerPort}";
      url = "http://${endpoint}";
      firewallPorts = if openFirewall then [ port ] else [ ];
    };
}
