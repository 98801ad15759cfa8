using System.Globalization;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Shim.Os.Interop;

namespace Shim.Os.Notify;

/// <summary>cgroup v1 event notifications registered through cgroup.event_control.</summary>
public static class CgroupEventControl
{
    /// <summary>
    /// Creates an eventfd (non-blocking, close-on-exec) and registers it for OOM notifications of the
    /// v1 memory cgroup directory <paramref name="memoryCgroupDirectory"/>; the counter rises on every OOM.
    /// </summary>
    /// <remarks>
    /// Writes "&lt;eventfd&gt; &lt;fd of memory.oom_control&gt;" to cgroup.event_control, as
    /// containerd's cgroup1 memory controller does. The memory.oom_control fd is only needed for the
    /// write. The kernel drops the registration when the eventfd is closed, and signals the eventfd
    /// once when the cgroup is removed (so a reader should check the cgroup still exists).
    /// Throws <see cref="ErrnoException"/> (ENOENT when the cgroup or the memory files do not exist).
    /// </remarks>
    public static SafeFileHandle RegisterOomEventFd(string memoryCgroupDirectory)
    {
        ArgumentNullException.ThrowIfNull(memoryCgroupDirectory);
        var eventFd = EventFd.Create();
        try
        {
            using var oomControl = Fds.Open(Path.Combine(memoryCgroupDirectory, "memory.oom_control"), Fds.O_RDONLY);
            string eventControlPath = Path.Combine(memoryCgroupDirectory, "cgroup.event_control");
            using var eventControl = Fds.Open(eventControlPath, Fds.O_WRONLY);
            using var eventUse = new FdUse(eventFd);
            using var controlUse = new FdUse(oomControl);
            byte[] line = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{eventUse.Fd} {controlUse.Fd}"));
            int n = RawIo.Write(eventControl, line);
            if (n < 0)
            {
                throw new ErrnoException(-n, $"write {eventControlPath}");
            }
            return eventFd;
        }
        catch
        {
            eventFd.Dispose();
            throw;
        }
    }
}
