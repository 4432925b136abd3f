// Test support, not installed: makes AtomicFileWriter (and so save_checkpoint, Figure::save, every
// file the project writes) fail at one stage as if the system call there had failed with errno
// `error`, for as long as the object lives, on the current thread only (a test cannot disturb
// writes on other threads).
#pragma once

namespace tapeflow::testing {

enum class SaveStage {
    open,             // creating the temporary file
    write,            // writing the contents
    flush,            // writing the last buffered bytes
    fsync,            // fsync of the temporary file
    close,            // closing it
    rename,           // renaming it over the destination
    fsync_directory,  // fsync of the containing directory (after the rename)
};

class SaveFaultInjection {
public:
    SaveFaultInjection(SaveStage stage, int error);
    ~SaveFaultInjection();
    SaveFaultInjection(const SaveFaultInjection&) = delete;
    SaveFaultInjection& operator=(const SaveFaultInjection&) = delete;
};

// The errno to simulate at `stage` on this thread, or 0 to run the real system call.
int injected_save_error(SaveStage stage);

}  // namespace tapeflow::testing
