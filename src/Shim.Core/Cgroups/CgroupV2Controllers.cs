namespace Shim.Core.Cgroups;

/// <summary>
/// On cgroup v2, enables every controller the root offers on the way down to a container's cgroup,
/// as the Go shim does after create, so limits set later (runc update) have a controller to land in.
/// </summary>
internal static class CgroupV2Controllers
{
    /// <summary>
    /// Writes "+ctrl" into cgroup.subtree_control of the root and every ancestor of
    /// <paramref name="cgroupPath"/> (not the cgroup itself, which holds processes); controllers a
    /// level refuses are skipped. Returns how many writes succeeded.
    /// </summary>
    public static int EnableAll(string cgroupPath, string root = CgroupFactory.DefaultRoot)
    {
        string available;
        try
        {
            available = File.ReadAllText(Path.Combine(root, "cgroup.controllers")).Trim();
        }
        catch (IOException)
        {
            return 0;
        }
        if (available.Length == 0)
        {
            return 0;
        }
        string[] controllers = available.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        int written = 0;
        string current = root;
        string[] parts = cgroupPath.Trim('/').Split('/', StringSplitOptions.RemoveEmptyEntries);
        foreach (var part in parts[..^1].Prepend(""))
        {
            current = part.Length == 0 ? root : Path.Combine(current, part);
            string control = Path.Combine(current, "cgroup.subtree_control");
            if (!File.Exists(control))
            {
                break;
            }
            foreach (var controller in controllers)
            {
                try
                {
                    // one write per controller: the kernel rejects the whole line if one is refused
                    File.WriteAllText(control, "+" + controller);
                    written++;
                }
                catch (IOException)
                {
                }
                catch (UnauthorizedAccessException)
                {
                }
            }
        }
        return written;
    }
}
