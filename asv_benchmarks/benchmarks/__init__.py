"""cdeconv airspeed-velocity benchmarks (configuration and commands: ../asv.conf.json)."""
