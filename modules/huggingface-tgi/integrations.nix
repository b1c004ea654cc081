# services.huggingface-tgi integrations: a Prometheus scrape job for every enabled instance and
# their registration as OpenAI-compatible endpoints of Open WebUI.
{
  config,
  options,
  lib,
  ...
}:
let
  cfg = config.services.huggingface-tgi;

  inherit (lib)
    concatMap
    concatStringsSep
    elem
    filterAttrs
    findFirst
    length
    mapAttrs
    mapAttrsToList
    mkDefault
    mkEnableOption
    mkIf
    mkMerge
    optional
    range
    replicate
    ;

  enabled = filterAttrs (_: inst: inst.enable) cfg.instances;

  # The core's facts: where this host reaches an instance (loopback of the same family for a
  # wildcard address), and the engine version a dashboard shows (the image's digest or tag).
  facts = cfg.facts;

  # TGI serves /metrics on its API port, without authentication (also with --api-key).
  scrapeJob = {
    job_name = "huggingface-tgi";
    metrics_path = "/metrics";
    static_configs = mapAttrsToList (name: f: {
      targets = [ f.network.endpoint ];
      labels = {
        instance_name = name;
        model_id = f.model.id;
        engine = "tgi";
        engine_version = f.image.version;
      };
    }) facts;
  };

  openaiBaseUrls = mapAttrsToList (_: f: "${f.network.url}/v1") facts;

  # Open WebUI listens on 8080 by default, the port TGI instances are often given. With the
  # integration on, a colliding default moves to the first free port from 3000 (the host port its
  # own docs publish it on); a port set by hand stays, and a collision then asserts.
  hasOpenWebui = options ? services && options.services ? open-webui;
  instancePorts = mapAttrsToList (_: f: f.network.port) facts;
  openWebuiFreePort = findFirst (p: !elem p instancePorts) null (range 3000 3099);
  wildcard = address: elem address [
    "0.0.0.0"
    "::"
  ];
  openWebuiCollisions =
    let
      webui = config.services.open-webui;
    in
    concatMap (
      name:
      let
        f = facts.${name};
      in
      optional (
        f.network.port == webui.port
        && (f.network.listenAddress == webui.host || f.network.wildcard || wildcard webui.host)
      ) "services.huggingface-tgi.instances.${name}.port and services.open-webui.port are both ${toString webui.port} (instance on ${f.network.listenAddress}, Open WebUI on ${webui.host}); only one server can listen there: give one of them another port"
    ) (lib.attrNames facts);
in
{
  options.services.huggingface-tgi = {
    prometheus.enable = mkEnableOption ''
      a Prometheus scrape job `huggingface-tgi` (in `services.prometheus.scrapeConfigs`) with one
      target per enabled instance, labelled `instance_name`, `model_id`, `engine` and
      `engine_version`. Import docs/grafana-dashboard.json into Grafana to chart the `tgi_*`
      metrics by `instance_name`
    '';

    openWebui.enable = mkEnableOption ''
      the registration of every enabled instance as an OpenAI-compatible endpoint
      (`http://<address>:<port>/v1`) of `services.open-webui`, through its
      `OPENAI_API_BASE_URLS` and `OPENAI_API_KEYS` variables. Values set in
      `services.open-webui.environment` take precedence
    '';
  };

  config = mkMerge [
    (mkIf (cfg.prometheus.enable && enabled != { }) {
      services.prometheus.scrapeConfigs = [ scrapeJob ];
    })

    (mkIf (hasOpenWebui && config.services.open-webui.enable) {
      assertions = map (message: {
        assertion = false;
        inherit message;
      }) openWebuiCollisions;
    })

    (mkIf cfg.openWebui.enable {
      assertions = [
        {
          assertion = config.services.open-webui.enable;
          message = "services.huggingface-tgi.openWebui.enable registers the instances with Open WebUI; set services.open-webui.enable = true as well.";
        }
      ];
    })

    (mkIf (cfg.openWebui.enable && config.services.open-webui.enable && enabled != { }) {
      # Set on the unit rather than on services.open-webui.environment: defining that option would
      # replace its defaults (SCARF_NO_ANALYTICS, DO_NOT_TRACK, ...). mkDefault lets the user's own
      # services.open-webui.environment values win.
      # The key placeholder "none" is refused by instances that demand an API key; their key must
      # not enter the store, so the admin supplies OPENAI_API_KEYS through Open WebUI's secret file.
      services.open-webui.port = mkIf (
        elem options.services.open-webui.port.default instancePorts && openWebuiFreePort != null
      ) (mkDefault openWebuiFreePort);
      warnings = lib.concatMap (
        name:
        lib.optional (enabled.${name}.apiKeyFile != null)
          "services.huggingface-tgi.instances.${name}.apiKeyFile is set, but openWebui registers it with the key \"none\"; put OPENAI_API_KEYS (keys in the order of OPENAI_API_BASE_URLS) in services.open-webui.environmentFile."
      ) (lib.attrNames enabled);
      systemd.services.open-webui.environment = mapAttrs (_: mkDefault) {
        ENABLE_OPENAI_API = "True";
        OPENAI_API_BASE_URLS = concatStringsSep ";" openaiBaseUrls;
        # TGI needs no key unless an instance passes --api-key; Open WebUI wants one per URL.
        OPENAI_API_KEYS = concatStringsSep ";" (replicate (length openaiBaseUrls) "none");
      };
    })
  ];

  meta.maintainers = [ ];
}
