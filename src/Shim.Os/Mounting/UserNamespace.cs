using Microsoft.Win32.SafeHandles;
using Shim.Os.Interop;

namespace Shim.Os.Mounting;

/// <summary>
/// A user namespace carrying given uid/gid mappings, held only as a descriptor: what
/// mount_setattr(MOUNT_ATTR_IDMAP) takes. A user namespace can only be created by a process that
/// has a single thread, which a .NET process never has, so a helper child makes it
/// (util-linux `unshare --user cat`); we write its maps as the parent, open /proc/PID/ns/user and
/// let it go (containerd forks a child for the same reason: core/mount/mount_idmapped_utils_linux.go).
/// </summary>
internal static class UserNamespace
{
    private static readonly string[] UnshareCandidates = ["/usr/bin/unshare", "/bin/unshare"];
    private static readonly string[] CatCandidates = ["/usr/bin/cat", "/bin/cat"];
    private static readonly TimeSpan HelperExitTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Creates the namespace and returns its descriptor; the helper has exited when this returns.</summary>
    internal static SafeFileHandle Create(Reaper reaper, IReadOnlyList<IdMapping> uidMap, IReadOnlyList<IdMapping> gidMap)
    {
        string unshare = Find(UnshareCandidates);
        string cat = Find(CatCandidates);
        var (childIn, toChild) = Pipes.Create();
        var (fromChild, childOut) = Pipes.Create();
        ChildProcess? child = null;
        try
        {
            using (childIn)
            using (childOut)
            {
                child = reaper.Spawn(new SpawnOptions
                {
                    Path = unshare,
                    Args = ["unshare", "--user", cat],
                    Fds = new Dictionary<int, System.Runtime.InteropServices.SafeHandle> { [0] = childIn, [1] = childOut },
                });
            }
            // cat echoes a byte only once it runs, which is after unshare(CLONE_NEWUSER).
            Span<byte> probe = [(byte)'u'];
            if (RawIo.Write(toChild, probe) != 1 || RawIo.Read(fromChild, probe) != 1)
            {
                throw new ErrnoException(Errno.ECHILD, $"{unshare} --user {cat} exited before it entered a new user namespace");
            }
            string proc = $"/proc/{child.Pid}";
            WriteMap($"{proc}/uid_map", uidMap);
            WriteMap($"{proc}/gid_map", gidMap);
            return Fds.Open($"{proc}/ns/user", Libc.O_RDONLY);
        }
        finally
        {
            toChild.Dispose();   // EOF: cat exits
            fromChild.Dispose();
            if (child is not null && !child.Exited.Wait(HelperExitTimeout))
            {
                _ = Libc.kill(child.Pid, Libc.SIGKILL);
                child.Exited.Wait(HelperExitTimeout);
            }
        }
    }

    private static void WriteMap(string path, IReadOnlyList<IdMapping> map)
    {
        try
        {
            File.WriteAllText(path, IdMapping.ToProcFormat(map));
        }
        catch (IOException ex)
        {
            throw new IOException($"write {path} \"{IdMapping.ToProcFormat(map).TrimEnd().Replace('\n', ',')}\": {ex.Message}", ex);
        }
    }

    private static string Find(string[] candidates) =>
        candidates.FirstOrDefault(File.Exists)
            ?? throw new FileNotFoundException($"idmapped mounts need {candidates[0]} (util-linux / coreutils) to create a user namespace");
}
