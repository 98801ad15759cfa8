namespace Shim.Os.Mounting;

/// <summary>
/// The overlay "lowerdir=" option: finding it, the layers' common parent, and the compaction of a
/// list too long for mount(2)'s one page of data into paths relative to that parent
/// (containerd core/mount/mount_linux.go compactLowerdirOption, getCommonDirectory).
/// </summary>
internal static class OverlayLowerdirs
{
    private const string Prefix = "lowerdir=";

    // containerd compacts once the options' total length reaches a page minus this much room.
    private const int Headroom = 512;

    /// <summary>True if the options (their lengths summed, as containerd counts them) need compaction to fit one page.</summary>
    internal static bool TooLong(IReadOnlyList<string> options, int pageSize)
    {
        int size = 0;
        foreach (string option in options)
        {
            size += option.Length;
        }
        return size >= pageSize - Headroom;
    }

    /// <summary>Index of the first "lowerdir=" option and its directories split on ':'; (-1, []) if there is none.</summary>
    internal static (int Index, string[] Dirs) Find(IReadOnlyList<string> options)
    {
        for (int i = 0; i < options.Count; i++)
        {
            if (options[i].StartsWith(Prefix, StringComparison.Ordinal))
            {
                return (i, options[i][Prefix.Length..].Split(':'));
            }
        }
        return (-1, []);
    }

    /// <summary>
    /// The directory that holds every layer: the parent of the layers' longest common prefix, so
    /// snapshots/1 and snapshots/12 share snapshots/ rather than "snapshots/1". Null if that is
    /// "/" or there is none.
    /// </summary>
    internal static string? CommonParent(IReadOnlyList<string> dirs)
    {
        if (dirs.Count == 0)
        {
            return null;
        }
        string min = dirs[0];
        string max = dirs[0];
        foreach (string dir in dirs)
        {
            if (string.CompareOrdinal(dir, min) < 0) { min = dir; }
            if (string.CompareOrdinal(dir, max) > 0) { max = dir; }
        }
        int common = 0;
        while (common < min.Length && common < max.Length && min[common] == max[common])
        {
            common++;
        }
        string parent = Parent(min[..common]);
        return parent is "/" or "." ? null : parent;
    }

    /// <summary>
    /// Rewrites the lowerdir option with paths relative to the layers' common parent, moved to the
    /// end of the list as containerd does; returns that parent (the directory the mount must be
    /// made from) or null with the options unchanged when there is nothing to compact.
    /// </summary>
    internal static (string? Directory, IReadOnlyList<string> Options) Compact(IReadOnlyList<string> options)
    {
        var (index, dirs) = Find(options);
        if (index < 0 || dirs.Length == 1)
        {
            return (null, options);
        }
        string? parent = CommonParent(dirs);
        if (parent is null)
        {
            return (null, options);
        }
        string prefix = parent + "/";
        var relative = new string[dirs.Length];
        for (int i = 0; i < dirs.Length; i++)
        {
            if (dirs[i].Length <= prefix.Length || !dirs[i].StartsWith(prefix, StringComparison.Ordinal))
            {
                return (null, options);
            }
            relative[i] = dirs[i][prefix.Length..];
        }
        var rewritten = new List<string>(options.Count);
        for (int i = 0; i < options.Count; i++)
        {
            if (i != index)
            {
                rewritten.Add(options[i]);
            }
        }
        rewritten.Add(Prefix + string.Join(':', relative));
        return (parent, rewritten);
    }

    /// <summary>Replaces the lowerdir option's directories (in place, order kept).</summary>
    internal static IReadOnlyList<string> WithDirs(IReadOnlyList<string> options, int index, IEnumerable<string> dirs)
    {
        var rewritten = new List<string>(options);
        rewritten[index] = Prefix + string.Join(':', dirs);
        return rewritten;
    }

    // Go's path.Dir: everything before the last '/', cleaned of trailing slashes; "." without one.
    private static string Parent(string path)
    {
        int slash = path.LastIndexOf('/');
        if (slash < 0)
        {
            return ".";
        }
        string dir = path[..slash].TrimEnd('/');
        return dir.Length == 0 ? "/" : dir;
    }
}
