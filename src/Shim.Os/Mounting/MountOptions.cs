using Shim.Os.Interop;

namespace Shim.Os;

/// <summary>containerd mount options split into mount(2) flags, propagation flags and the data string.</summary>
internal readonly record struct MountOptions(ulong Flags, ulong Propagation, string Data)
{
    // Same table as containerd's mount_linux.go: (clear, flag). "clear" options undo a flag.
    private static readonly Dictionary<string, (bool Clear, ulong Flag)> FlagOptions = new(StringComparer.Ordinal)
    {
        ["async"] = (true, Libc.MS_SYNCHRONOUS),
        ["atime"] = (true, Libc.MS_NOATIME),
        ["bind"] = (false, Libc.MS_BIND),
        ["defaults"] = (false, 0),
        ["dev"] = (true, Libc.MS_NODEV),
        ["diratime"] = (true, Libc.MS_NODIRATIME),
        ["dirsync"] = (false, Libc.MS_DIRSYNC),
        ["exec"] = (true, Libc.MS_NOEXEC),
        ["mand"] = (false, Libc.MS_MANDLOCK),
        ["noatime"] = (false, Libc.MS_NOATIME),
        ["nodev"] = (false, Libc.MS_NODEV),
        ["nodiratime"] = (false, Libc.MS_NODIRATIME),
        ["noexec"] = (false, Libc.MS_NOEXEC),
        ["nomand"] = (true, Libc.MS_MANDLOCK),
        ["norelatime"] = (true, Libc.MS_RELATIME),
        ["nostrictatime"] = (true, Libc.MS_STRICTATIME),
        ["nosuid"] = (false, Libc.MS_NOSUID),
        ["rbind"] = (false, Libc.MS_BIND | Libc.MS_REC),
        ["relatime"] = (false, Libc.MS_RELATIME),
        ["remount"] = (false, Libc.MS_REMOUNT),
        ["ro"] = (false, Libc.MS_RDONLY),
        ["rw"] = (true, Libc.MS_RDONLY),
        ["strictatime"] = (false, Libc.MS_STRICTATIME),
        ["suid"] = (true, Libc.MS_NOSUID),
        ["sync"] = (false, Libc.MS_SYNCHRONOUS),
    };

    private static readonly Dictionary<string, ulong> PropagationOptions = new(StringComparer.Ordinal)
    {
        ["private"] = Libc.MS_PRIVATE,
        ["rprivate"] = Libc.MS_PRIVATE | Libc.MS_REC,
        ["shared"] = Libc.MS_SHARED,
        ["rshared"] = Libc.MS_SHARED | Libc.MS_REC,
        ["slave"] = Libc.MS_SLAVE,
        ["rslave"] = Libc.MS_SLAVE | Libc.MS_REC,
        ["unbindable"] = Libc.MS_UNBINDABLE,
        ["runbindable"] = Libc.MS_UNBINDABLE | Libc.MS_REC,
    };

    /// <summary>True if MS_BIND is set.</summary>
    internal bool IsBind => (Flags & Libc.MS_BIND) != 0;

    /// <summary>True if MS_REMOUNT is set.</summary>
    internal bool IsRemount => (Flags & Libc.MS_REMOUNT) != 0;

    /// <summary>True if MS_RDONLY is set.</summary>
    internal bool IsReadOnly => (Flags & Libc.MS_RDONLY) != 0;

    /// <summary>Applies the options left to right (a later "rw" undoes an earlier "ro"); unknown ones go to the data string.</summary>
    internal static MountOptions Parse(IReadOnlyList<string> options)
    {
        ulong flags = 0;
        ulong propagation = 0;
        List<string>? data = null;
        foreach (string option in options)
        {
            if (FlagOptions.TryGetValue(option, out var entry))
            {
                flags = entry.Clear ? flags & ~entry.Flag : flags | entry.Flag;
            }
            else if (PropagationOptions.TryGetValue(option, out ulong p))
            {
                propagation |= p;
            }
            else if (option.Length > 0)
            {
                (data ??= []).Add(option);
            }
        }
        return new MountOptions(flags, propagation, data is null ? string.Empty : string.Join(',', data));
    }
}
