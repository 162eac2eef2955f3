# Helpers for the benches (sourced).

# firmware_image SIZE_MIB: writes to stdout half incompressible, half text-like bytes, which is
# what a firmware image with code and tables looks like to a compressor.
firmware_image() {
  local half=$(($1 / 2))
  head -c "${half}M" /dev/urandom
  # yes ends by SIGPIPE when head has enough; that is not a failure.
  { yes "calibration table row: 3.700V 25.0C 0x1f2e3d4c status=ok" || true; } |
    head -c "$(($1 - half))M"
}
