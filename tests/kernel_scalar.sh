#!/bin/sh
# Run the codec tests again with the portable reference kernels forced (TSTORE_KERNEL=scalar), so
# that the golden vectors check both kernel tables through the public API.
status=0
for t in test_elem test_nvfp4 test_mxfp4 test_fp8 test_int8 test_codec test_lossless; do
	TSTORE_KERNEL=scalar ./tests/$t || { echo "FAIL: TSTORE_KERNEL=scalar tests/$t"; status=1; }
done
exit $status
