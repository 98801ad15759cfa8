using System.Runtime.InteropServices;

namespace Shim.Os.Interop;

/// <summary>setns(2) and sethostname(2).</summary>
internal static unsafe partial class Libc
{
    internal const int CLONE_NEWUTS = 0x04000000;
    internal const int CLONE_NEWIPC = 0x08000000;
    internal const int CLONE_NEWPID = 0x20000000;
    internal const int CLONE_NEWNET = 0x40000000;

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int setns(int fd, int nstype);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int sethostname(byte* name, nuint length);
}
