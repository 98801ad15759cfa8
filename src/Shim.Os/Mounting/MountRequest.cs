namespace Shim.Os.Mounting;

/// <summary>One mount of a container's rootfs as containerd sends it (types.Mount): target is relative to the rootfs, "" for the rootfs itself.</summary>
public readonly record struct MountRequest(string Type, string Source, string Target, IReadOnlyList<string> Options)
{
    /// <summary>"overlay overlay on /" style, for messages.</summary>
    public override string ToString() => $"{Type} {Source} on /{Target.TrimStart('/')}";
}
