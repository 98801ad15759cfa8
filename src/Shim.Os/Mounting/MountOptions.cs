using Shim.Os.Interop;

namespace Shim.Os.Mounting;

/// <summary>
/// containerd mount options split into mount(2) flags, propagation flags, the data string and the
/// options that are the shim's to act on (loop, uidmap=, gidmap=), as containerd's mount package
/// parses them (core/mount/mount_linux.go parseMountOptions; mount/mount_linux.go in 1.6).
/// </summary>
internal readonly record struct MountOptions(ulong Flags, ulong Propagation, string Data)
{
    /// <summary>"loop": the source is a file to attach to a loop device.</summary>
    internal bool Loop { get; init; }

    /// <summary>"direct-io" next to "loop": the loop device does direct I/O (removed from the data).</summary>
    internal bool LoopDirectIo { get; init; }

    /// <summary>Value of "uidmap=" ("container:host:size[,...]"), or null.</summary>
    internal string? UidMap { get; init; }

    /// <summary>Value of "gidmap=", or null.</summary>
    internal string? GidMap { get; init; }

    /// <summary>True if both uidmap= and gidmap= were given (an idmapped mount is wanted).</summary>
    internal bool IsIdMapped => UidMap is not null && GidMap is not null;

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

    /// <summary>
    /// Applies the options left to right (a later "rw" undoes an earlier "ro"); unknown ones go to
    /// the data string. Throws <see cref="FormatException"/> naming the option for one that cannot
    /// be right (uidmap/gidmap without a value, only one of the two).
    /// </summary>
    internal static MountOptions Parse(IReadOnlyList<string> options)
    {
        ulong flags = 0;
        ulong propagation = 0;
        bool loop = false;
        string? uidMap = null;
        string? gidMap = null;
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
            else if (option == "loop")
            {
                loop = true;
            }
            else if (option.StartsWith("X-containerd.", StringComparison.Ordinal))
            {
                // containerd's mount manager (core/mount/manager) acts on these before mount(2);
                // they are never kernel options, so they are dropped rather than handed on.
                continue;
            }
            else if (IdMapValue(option, "uidmap") is { } u)
            {
                uidMap = u;
            }
            else if (IdMapValue(option, "gidmap") is { } g)
            {
                gidMap = g;
            }
            else if (option.Length > 0)
            {
                (data ??= []).Add(option);
            }
        }
        if ((uidMap is null) != (gidMap is null))
        {
            // containerd's shim silently mounts without any mapping then; files would show up
            // owned by the overflow id inside the container, so refuse instead.
            throw new FormatException($"option \"{(uidMap is null ? "gidmap=" + gidMap : "uidmap=" + uidMap)}\" needs its counterpart ({(uidMap is null ? "uidmap=" : "gidmap=")}): only both together are supported");
        }
        bool directIo = loop && data is not null && data.Remove("direct-io");
        return new MountOptions(flags, propagation, data is null ? string.Empty : string.Join(',', data))
        {
            Loop = loop,
            LoopDirectIo = directIo,
            UidMap = uidMap,
            GidMap = gidMap,
        };
    }

    private static string? IdMapValue(string option, string name)
    {
        if (option == name || option == name + "=")
        {
            throw new FormatException($"option \"{option}\" needs a value: {name}=<container-id>:<host-id>:<size>[,...]");
        }
        return option.StartsWith(name + "=", StringComparison.Ordinal) ? option[(name.Length + 1)..] : null;
    }
}
