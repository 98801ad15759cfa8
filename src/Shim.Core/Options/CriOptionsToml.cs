using Shim.Core.Errors;
using Tomlyn;
using Tomlyn.Parsing;
using Tomlyn.Syntax;

namespace Shim.Core.Options;

/// <summary>
/// Reads the TOML table containerd's CRI plugin passes for a runtime handler with an [options]
/// table (runtimeoptions.v1.Options config_body, or the file at config_path). Keys are the Go field
/// names of the runc options (BinaryName, Root, SystemdCgroup...); snake_case is accepted too.
/// </summary>
internal static class CriOptionsToml
{
    /// <summary>Parses the table into runtime options; unknown keys are ignored, bad syntax is an invalid argument.</summary>
    public static RuntimeOptions Parse(string toml, string source)
    {
        try
        {
            return Read(toml, source);
        }
        catch (Exception ex) when (ex is TomlException or ArgumentException or FormatException or OverflowException or InvalidOperationException)
        {
            // Tomlyn throws instead of reporting for some input: nesting past 64 levels (TomlException),
            // an escape that is no Unicode scalar (ArgumentOutOfRangeException); found by fuzz/run.sh
            // config-toml and runtime-options, answered UNKNOWN before
            throw new ShimException(ErrorKind.InvalidArgument, $"runtime options {source}: {ex.Message}", ex);
        }
    }

    private static RuntimeOptions Read(string toml, string source)
    {
        var doc = SyntaxParser.Parse(toml, source, false);
        if (doc.HasErrors)
        {
            throw new ShimException(ErrorKind.InvalidArgument, $"runtime options {source}: {string.Join("; ", doc.Diagnostics.Select(d => d.ToString()))}");
        }
        var o = new RuntimeOptions();
        foreach (var kv in doc.KeyValues)
        {
            string key = Normalize(kv.Key?.ToString() ?? "");
            o = (key, kv.Value) switch
            {
                ("binaryname", StringValueSyntax v) => o with { BinaryName = v.Value ?? "" },
                ("root", StringValueSyntax v) => o with { Root = v.Value ?? "" },
                ("systemdcgroup", BooleanValueSyntax v) => o with { SystemdCgroup = v.Value },
                ("nopivotroot", BooleanValueSyntax v) => o with { NoPivotRoot = v.Value },
                ("nonewkeyring", BooleanValueSyntax v) => o with { NoNewKeyring = v.Value },
                ("iouid", IntegerValueSyntax v) => o with { IoUid = Id(v.Value, "IoUid", source) },
                ("iogid", IntegerValueSyntax v) => o with { IoGid = Id(v.Value, "IoGid", source) },
                ("shimcgroup", StringValueSyntax v) => o with { ShimCgroup = v.Value ?? "" },
                ("criuworkpath", StringValueSyntax v) => o with { CriuWorkPath = v.Value ?? "" },
                _ => o,
            };
        }
        return o;
    }

    /// <summary>A uid or gid: a value outside 0..2^32-1 (the Go decoder refuses it too) is not wrapped into one.</summary>
    private static uint Id(long value, string key, string source) =>
        value is >= 0 and <= uint.MaxValue
            ? (uint)value
            : throw new ShimException(ErrorKind.InvalidArgument, $"runtime options {source}: {key} = {value} is not a uid or gid (0 to {uint.MaxValue})");

    private static string Normalize(string key) =>
        new string(key.Trim().Trim('"').Where(c => c != '_').ToArray()).ToLowerInvariant();
}
