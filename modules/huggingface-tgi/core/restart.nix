# Restart and retry policies of the units, per target systemd: what happens after a failure.
rec {
  # The main unit's restart policy for the target's systemd (null: current, as on NixOS).
  # systemd >= 254 backs off: 2 s, then 5, 15, 40, 110 s up to 5 min (RestartSteps=5 between
  # RestartSec= and RestartMaxDelaySec=), and 10 failed starts (about 23 min of back-off when the
  # container fails at once) leave the unit failed. Older systemd ignores both keys (only a
  # warning in the journal), which silently turned the back-off into a fixed 2 s and made 10
  # starts a 20-second burst. There, a fixed 1 min between restarts with 24 starts per 6 h gives
  # up after about the same 23 min of immediate failures, and a short burst of crashes (a GPU
  # reset, a registry hiccup) costs a minute each instead of failing the unit.
  restartBackoffSince = 254;
  # The keys restartPolicy renders only for a systemd that knows them (validate: a host whose
  # systemd-analyze is older cannot check them, which is a note, not an error).
  keysSince = {
    RestartSteps = restartBackoffSince;
    RestartMaxDelaySec = restartBackoffSince;
    RestartMode = restartBackoffSince;
  };
  restartPolicy =
    systemdVersion:
    if systemdVersion == null || systemdVersion >= restartBackoffSince then
      {
        unit = {
          StartLimitIntervalSec = "6h";
          StartLimitBurst = 10;
        };
        service = {
          RestartSec = "2s";
          RestartSteps = 5;
          RestartMaxDelaySec = "5min";
        };
        # The image unit goes from a failed try straight back to activating, so the main unit's
        # start job waits for the retry instead of failing with 'dependency' at the first failed
        # pull (measured in the VM: with the default mode, a pull that failed once and succeeded
        # 3 s later left the main unit inactive, its start never tried again).
        imageService = {
          RestartMode = "direct";
        };
        note = null;
      }
    else
      {
        unit = {
          StartLimitIntervalSec = "6h";
          StartLimitBurst = 24;
        };
        service = {
          RestartSec = "1min";
        };
        imageService = { };
        note = "rendered for systemd ${toString systemdVersion}: RestartSteps= and RestartMaxDelaySec= (the 2 s to 5 min restart back-off) need systemd >= ${toString restartBackoffSince}; the main units restart every 1 min instead, at most 24 starts in 6 h (StartLimitBurst=24 instead of 10). RestartMode=direct needs it too: an image unit whose first pull fails still retries, but the main unit's start has already failed ('dependency'); start it again once the image unit is active";
      };

  # The image unit: a pull that fails (a wrong tag, a registry that refuses, no network yet at
  # boot) is retried every 30 s while the main unit's start waits (imageService above), at most
  # 10 starts per hour; then the unit stays failed (start-limit-hit) and the main unit's start
  # fails with it, with failure-report.sh's line naming the image, instead of retrying forever.
  imageRetry = {
    RestartSec = "30s";
    StartLimitIntervalSec = "1h";
    StartLimitBurst = 10;
  };
}
