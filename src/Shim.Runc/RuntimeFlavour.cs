namespace Shim.Runc;

/// <summary>
/// Which runc-compatible runtime a BinaryName is, where their command lines differ. Told by the
/// first word of <c>BINARY --version</c> ("runc version 1.3.6", "crun version 1.21"); anything
/// else is taken for runc, as containerd's shim (go-runc) takes every binary to be.
/// </summary>
internal enum RuntimeFlavour
{
    /// <summary>runc, or a runtime that does not say it is crun: runc's flags.</summary>
    Runc,

    /// <summary>
    /// crun: its <c>restore</c> has no <c>--no-subreaper</c> (crun's src/restore.c lists its options;
    /// it never makes itself a subreaper, so the restored init is reparented to the shim anyway).
    /// </summary>
    Crun,
}

/// <summary>Reads a runtime's <c>--version</c> output.</summary>
internal static class RuntimeFlavours
{
    /// <summary>The flavour that <c>--version</c> printed <paramref name="output"/> names.</summary>
    public static RuntimeFlavour FromVersion(ReadOnlySpan<byte> output)
    {
        ReadOnlySpan<byte> first = output.TrimStart(" \t\r\n"u8);
        int end = first.IndexOfAny(" \t\r\n"u8);
        ReadOnlySpan<byte> word = end < 0 ? first : first[..end];
        return word.SequenceEqual("crun"u8) ? RuntimeFlavour.Crun : RuntimeFlavour.Runc;
    }
}
