# Who runs an instance's podman: the one definition of the rootless default, the shared user and
# the derived uid (units.nix builds the units from it, rules.nix checks it, default.nix lists the
# users to create).
#
# Rootless unless `rootful = true`. Instances that set no `user` share `huggingface-tgi`: one
# storage, so one copy of each image on the host. The uid is fixed at evaluation (the units name
# user@<uid>.service and /run/user/<uid>), derived from the name when not set: the same name gets
# the same uid on every host and at every evaluation, without a table to keep.
let
  inherit (builtins)
    foldl'
    genList
    hashString
    stringLength
    substring
    ;
  hexValue = {
    "0" = 0;
    "1" = 1;
    "2" = 2;
    "3" = 3;
    "4" = 4;
    "5" = 5;
    "6" = 6;
    "7" = 7;
    "8" = 8;
    "9" = 9;
    "a" = 10;
    "b" = 11;
    "c" = 12;
    "d" = 13;
    "e" = 14;
    "f" = 15;
  };
  fromHex = s: foldl' (acc: i: acc * 16 + hexValue.${substring i 1 s}) 0 (genList (i: i) (stringLength s));
in
rec {
  defaultUser = "huggingface-tgi";
  # Derived uids fall in [uidBase, uidBase + uidSpan): above the ids NixOS and distributions give
  # people (1000 up) in practice, below systemd's homed (60001+) and dynamic users (61184+).
  uidBase = 40000;
  uidSpan = 20000;
  derivedUid =
    user:
    let
      v = fromHex (substring 0 7 (hashString "sha256" user));
    in
    uidBase + (v - (v / uidSpan) * uidSpan);

  # null for a rootful instance
  userOf = inst: if inst.rootful then null else if inst.user == null then defaultUser else inst.user;
  uidOf =
    inst:
    let
      user = userOf inst;
    in
    if user == null then
      null
    else if inst.uid != null then
      inst.uid
    else
      derivedUid user;
  # The uid is derived (not set) for this instance.
  uidDerived = inst: !inst.rootful && inst.uid == null;
}
