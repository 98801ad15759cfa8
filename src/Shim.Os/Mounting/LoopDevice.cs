using System.Globalization;
using Microsoft.Win32.SafeHandles;
using Shim.Os.Interop;

namespace Shim.Os.Mounting;

/// <summary>
/// A loop device attached to a file for the "loop" mount option, with LO_FLAGS_AUTOCLEAR: the
/// kernel detaches it when its last user goes, i.e. when the mount on it is unmounted, or when
/// this handle is disposed if it never got mounted (containerd core/mount/losetup_linux.go sets
/// up the same way, with LOOP_SET_FD + LOOP_SET_STATUS64; LOOP_CONFIGURE does both in one call).
/// </summary>
internal sealed class LoopDevice : IDisposable
{
    // Another process can take the free device between LOOP_CTL_GET_FREE and LOOP_CONFIGURE.
    private const int Attempts = 16;

    private readonly SafeFileHandle _device;

    private LoopDevice(SafeFileHandle device, string path)
    {
        _device = device;
        Path = path;
    }

    /// <summary>/dev/loopN.</summary>
    internal string Path { get; }

    /// <summary>Attaches <paramref name="file"/> to a free loop device.</summary>
    internal static unsafe LoopDevice Attach(string file, bool readOnly, bool directIo)
    {
        int mode = readOnly ? Libc.O_RDONLY : Libc.O_RDWR;
        using var backing = Fds.Open(file, mode);
        using var control = Fds.Open("/dev/loop-control", Libc.O_RDWR);
        byte* config = stackalloc byte[Libc.LoopConfigSize];
        for (int attempt = 0; ; attempt++)
        {
            int number;
            using (var use = new FdUse(control))
            {
                number = Libc.ioctl(use.Fd, Libc.LOOP_CTL_GET_FREE, null);
            }
            if (number < 0)
            {
                throw ErrnoException.FromLast("ioctl LOOP_CTL_GET_FREE on /dev/loop-control");
            }
            string path = "/dev/loop" + number.ToString(CultureInfo.InvariantCulture);
            var device = Fds.Open(path, mode);
            new Span<byte>(config, Libc.LoopConfigSize).Clear();
            int result;
            using (var backingUse = new FdUse(backing))
            using (var deviceUse = new FdUse(device))
            {
                *(uint*)config = (uint)backingUse.Fd;
                *(uint*)(config + Libc.LoopConfigFlagsOffset) =
                    Libc.LO_FLAGS_AUTOCLEAR | (readOnly ? Libc.LO_FLAGS_READ_ONLY : 0) | (directIo ? Libc.LO_FLAGS_DIRECT_IO : 0);
                result = Libc.ioctl(deviceUse.Fd, Libc.LOOP_CONFIGURE, config);
            }
            if (result == 0)
            {
                return new LoopDevice(device, path);
            }
            int errno = Errno.Last;
            device.Dispose();
            if (errno != Errno.EBUSY || attempt + 1 == Attempts)
            {
                throw new ErrnoException(errno, $"ioctl LOOP_CONFIGURE {path} with {file}");
            }
        }
    }

    /// <summary>Drops our reference; the device detaches once nothing else uses it.</summary>
    public void Dispose() => _device.Dispose();
}
