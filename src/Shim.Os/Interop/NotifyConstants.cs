namespace Shim.Os.Interop;

// Numbers for eventfd, inotify and statfs used by the OOM watchers and cgroup mode detection.
// Kept apart from Constants.cs so that file has one owner; x64 and arm64 agree on every value here.
internal static partial class Libc
{
    // inotify(7): init flags equal O_NONBLOCK / O_CLOEXEC
    internal const int IN_NONBLOCK = 0x800;
    internal const int IN_CLOEXEC = 0x80000;

    // inotify(7) event bits
    internal const uint IN_MODIFY = 0x2;
    internal const uint IN_ATTRIB = 0x4;
    internal const uint IN_DELETE_SELF = 0x400;
    internal const uint IN_MOVE_SELF = 0x800;
    internal const uint IN_UNMOUNT = 0x2000;
    internal const uint IN_Q_OVERFLOW = 0x4000;
    internal const uint IN_IGNORED = 0x8000;

    // struct inotify_event { int wd; uint32_t mask; uint32_t cookie; uint32_t len; char name[]; }
    internal const int InotifyEventHeaderSize = 16;
    internal const int InotifyMaskOffset = 4;
    internal const int InotifyLenOffset = 12;
    internal const int NameMax = 255;

    // statfs(2): f_type is the first member, a long (8 bytes) on both 64-bit ABIs; the struct is
    // 120 bytes there, allocate more in case a libc pads it.
    internal const int StatfsBufferSize = 256;
    internal const int StatfsTypeOffset = 0;

    // Filesystem magics (linux/magic.h)
    internal const long CGROUP_SUPER_MAGIC = 0x27e0eb;
    internal const long CGROUP2_SUPER_MAGIC = 0x63677270;
    internal const long TMPFS_MAGIC = 0x01021994;
}
