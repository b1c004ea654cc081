# Rootless instances: two on the shared default user (no user, no uid) and one with its own user and a
# set uid; the module creates two users (uid derived or set, subordinate ids, lingering).
{ ... }:
{
  services.huggingface-tgi.instances = {
    a = {
      model = "org/a";
      port = 8080;
      environmentFile = "/var/lib/secrets/tgi.env";
    };
    b = {
      model = "org/b";
      port = 8081;
    };
    c = {
      model = "org/c";
      port = 8082;
      user = "tgi-c";
      uid = 2002;
    };
  };
}
