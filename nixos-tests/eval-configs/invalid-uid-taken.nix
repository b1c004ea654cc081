# expect-assertion: ^(services\.huggingface-tgi\.instances\.a\.uid: user huggingface-tgi gets uid 47481, which is already the uid of users\.users\.alice|UIDs and GIDs must be unique!)
# The shared user's derived uid (47481) already belongs to a user the admin declared. NixOS's own
# uniqueness assertion fires too; test_nixos_eval checks that ours (naming the option) does.
{ ... }:
{
  users.users.alice = {
    isNormalUser = true;
    uid = 47481;
  };
  services.huggingface-tgi.instances.a = {
    model = "org/a";
    port = 8080;
  };
}
