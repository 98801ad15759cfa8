using System.Diagnostics.CodeAnalysis;
using System.Runtime.ExceptionServices;
using Shim.Os.Interop;

namespace Shim.Os.Mounting;

/// <summary>
/// Runs an action on a short-lived thread that has its own working directory, so relative paths
/// the kernel resolves during the action (overlay lowerdirs) start there while every other thread
/// of the shim keeps its cwd. The thread unshares CLONE_FS and then ends, taking its cwd with it
/// (containerd does the same from a locked OS thread: core/mount/mount_linux.go mountAt).
/// </summary>
internal static class OwnCwdThread
{
    /// <summary>Runs <paramref name="action"/> with the cwd at <paramref name="directory"/>; rethrows what it threw.</summary>
    [SuppressMessage("Design", "CA1031:Do not catch general exception types", Justification = "whatever the action throws on the helper thread is captured and rethrown on the caller's thread")]
    internal static void Run(string directory, Action action)
    {
        ExceptionDispatchInfo? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                if (Libc.unshare(Libc.CLONE_FS) < 0)
                {
                    throw ErrnoException.FromLast("unshare CLONE_FS");
                }
                if (Libc.chdir(directory) < 0)
                {
                    throw ErrnoException.FromLast($"chdir {directory}");
                }
                action();
            }
            catch (Exception ex)
            {
                failure = ExceptionDispatchInfo.Capture(ex);
            }
        })
        { IsBackground = true, Name = "mount-cwd" };
        thread.Start();
        thread.Join();
        failure?.Throw();
    }
}
