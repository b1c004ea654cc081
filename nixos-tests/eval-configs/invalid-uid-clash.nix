# expect-assertion: ^services\.huggingface-tgi\.instances\.b\.uid: user "tgi-b" would get uid 47481, already the uid of user "huggingface-tgi"
# A set uid meets another user's derived one.
{ ... }:
{
  services.huggingface-tgi.instances = {
    a = {
      model = "org/a";
      port = 8080;
    };
    b = {
      model = "org/b";
      port = 8081;
      user = "tgi-b";
      uid = 47481;
    };
  };
}
