# Two rootless instances: each its own system user (fixed uid, subordinate ids, lingering).
{ ... }:
{
  services.huggingface-tgi.instances = {
    a = {
      model = "org/a";
      port = 8080;
      user = "tgi-a";
      uid = 2001;
      environmentFile = "/var/lib/secrets/tgi.env";
    };
    b = {
      model = "org/b";
      port = 8081;
      user = "tgi-b";
      uid = 2002;
    };
  };
}
