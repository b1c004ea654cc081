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
        note = "rendered for systemd ${toString systemdVersion}: RestartSteps= and RestartMaxDelaySec= (the 2 s to 5 min restart back-off) need systemd >= ${toString restartBackoffSince}; the main units restart every 1 min instead, at most 24 starts in 6 h (StartLimitBurst=24 instead of 10)";
      };

  # The image unit: a pull that fails (a wrong tag, a registry that refuses) is retried every
  # 30 s, at most 10 starts per hour; then the unit stays failed (start-limit-hit) and so does the
  # main unit that requires it, with failure-report.sh's line naming the image, instead of
  # retrying forever.
  imageRetry = {
    RestartSec = "30s";
    StartLimitIntervalSec = "1h";
    StartLimitBurst = 10;
  };
}
