using Shim.Core.Errors;
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
                ("iouid", IntegerValueSyntax v) => o with { IoUid = (uint)v.Value },
                ("iogid", IntegerValueSyntax v) => o with { IoGid = (uint)v.Value },
                ("shimcgroup", StringValueSyntax v) => o with { ShimCgroup = v.Value ?? "" },
                ("criuworkpath", StringValueSyntax v) => o with { CriuWorkPath = v.Value ?? "" },
                _ => o,
            };
        }
        return o;
    }

    private static string Normalize(string key) =>
        new string(key.Trim().Trim('"').Where(c => c != '_').ToArray()).ToLowerInvariant();
}
