# Which instance options a unit-file key is rendered from, so that `tgi-nix validate` can name the
# option when systemd-analyze rejects a line (<unit>:<line>: ...). Keys not listed come from the
# module itself (hardening, ordering), not from an option.
{
  TimeoutStartSec = [ "startTimeout" ];
  ExecStart = [
    "image"
    "model"
    "revision"
    "port"
    "listenAddress"
    "gpus"
    "cdiDevices"
    "numShard"
    "shmSize"
    "quantize"
    "dtype"
    "extraArgs"
    "extraPodmanArgs"
    "environment"
    "environmentFile"
    "cacheDir"
  ];
  ExecStartPre = [
    "environmentFile"
    "apiKeyFile"
    "user"
  ];
  ExecStopPost = [ "startTimeout" ];
  Environment = [ "environment" ];
  User = [ "user" ];
  Group = [ "user" ];
  ReadWritePaths = [ "cacheDir" ];
  DeviceAllow = [
    "gpus"
    "cdiDevices"
  ];
  Description = [ "model" ];
}
