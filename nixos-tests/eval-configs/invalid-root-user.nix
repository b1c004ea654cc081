# expect-assertion: ^services\.huggingface-tgi\.instances\.r\.user: user "root" is not a usable system user name
# Found by the differential test: the module defined users.users.root with the instance's uid, which
# clashed with NixOS's root before the assertion could say which option is wrong.
{ ... }:
{
  services.huggingface-tgi.instances.r = {
    model = "org/r";
    port = 8080;
    user = "root";
    uid = 2003;
  };
}
