namespace Shim.Os.Interop;

// Numbers of the new mount API, openat2 and loop devices. The syscall numbers come from the
// unified table added in Linux 5.x, identical on x64 and arm64 (include/uapi/asm-generic/unistd.h
// and arch/x86/entry/syscalls/syscall_64.tbl agree from 424 on).
internal static partial class Libc
{
    // syscall numbers
    internal const long SYS_open_tree = 428;
    internal const long SYS_move_mount = 429;
    internal const long SYS_openat2 = 437;
    internal const long SYS_mount_setattr = 442;

    // open(2) flag used to resolve a path without opening the file (x64 and arm64: 010000000)
    internal const int O_PATH = 0x200000;

    // openat2(2) struct open_how { u64 flags; u64 mode; u64 resolve; } (include/uapi/linux/openat2.h)
    internal const int OpenHowSize = 24;
    internal const ulong RESOLVE_NO_MAGICLINKS = 0x02;
    internal const ulong RESOLVE_IN_ROOT = 0x10;

    // open_tree(2), move_mount(2), mount_setattr(2) (include/uapi/linux/mount.h)
    internal const uint OPEN_TREE_CLONE = 1;
    internal const uint AT_RECURSIVE = 0x8000;
    internal const uint MOVE_MOUNT_F_EMPTY_PATH = 0x4;
    internal const ulong MOUNT_ATTR_RDONLY = 0x1;
    internal const ulong MOUNT_ATTR_IDMAP = 0x100000;
    // struct mount_attr { u64 attr_set; u64 attr_clr; u64 propagation; u64 userns_fd; }
    internal const int MountAttrSize = 32;

    // unshare(2)
    internal const int CLONE_FS = 0x200;

    // loop devices (include/uapi/linux/loop.h)
    internal const nuint LOOP_CLR_FD = 0x4C01;
    internal const nuint LOOP_CONFIGURE = 0x4C0A;
    internal const nuint LOOP_CTL_GET_FREE = 0x4C82;
    internal const uint LO_FLAGS_READ_ONLY = 1;
    internal const uint LO_FLAGS_AUTOCLEAR = 4;
    internal const uint LO_FLAGS_DIRECT_IO = 16;
    // struct loop_config { u32 fd; u32 block_size; struct loop_info64 info; u64 __reserved[8]; }:
    // 8 + 232 + 64 bytes; info.lo_flags sits at offset 52 of loop_info64.
    internal const int LoopConfigSize = 304;
    internal const int LoopConfigFlagsOffset = 8 + 52;
}
