// How many threads the tensor kernels may use. One by default, so results and timings are those of
// a single core unless the user opts in (the bench measures both).
#pragma once

namespace tapeflow {

int num_threads();
// Clamped to [1, hardware threads]; returns the value now in force.
int set_num_threads(int n);

}  // namespace tapeflow
