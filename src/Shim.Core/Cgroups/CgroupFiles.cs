using System.Globalization;

namespace Shim.Core.Cgroups;

/// <summary>Reading and parsing cgroup files the way containerd's cgroups library does, minus its hard failures.</summary>
/// <remarks>
/// A file that is missing or unreadable (ENOENT, ENODEV after the cgroup went away, EOPNOTSUPP for
/// disabled PSI, ...) reads as absent and its fields stay zero, where upstream would abort the
/// controller (v1 with IgnoreNotExist) or the whole Stat. Malformed lines are skipped.
/// </remarks>
internal static class CgroupFiles
{
    private static readonly char[] Whitespace = [' ', '\t', '\n', '\r', '\v', '\f'];

    /// <summary>The whole file, or null when it cannot be read.</summary>
    internal static string? TryReadText(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Non-empty lines of a file's text.</summary>
    internal static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>Whitespace-separated fields (Go's strings.Fields).</summary>
    internal static string[] Fields(string line) => line.Split(Whitespace, StringSplitOptions.RemoveEmptyEntries);

    /// <summary>Go cgroups' parseUint: a decimal uint64; a negative number (e.g. -1 for unlimited) reads as 0.</summary>
    internal static bool TryParseUint(string s, out ulong value)
    {
        if (ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out value))
        {
            return true;
        }
        value = 0;
        return s.Length > 1 && s[0] == '-' && s.AsSpan(1).IndexOfAnyExceptInRange('0', '9') < 0;
    }

    /// <summary>v1 readUint: "max" → 0 (backward compatibility upstream), else the number; null when missing or unparsable.</summary>
    internal static ulong? ReadUintV1(string path)
    {
        string? text = TryReadText(path);
        if (text is null)
        {
            return null;
        }
        string trimmed = text.Trim();
        if (trimmed == "max")
        {
            return 0;
        }
        return TryParseUint(trimmed, out ulong value) ? value : null;
    }

    /// <summary>v2 getStatFileContentUint64: "max" → ulong.MaxValue, missing or unparsable → 0.</summary>
    internal static ulong ReadUintV2(string path)
    {
        string? text = TryReadText(path);
        if (text is null)
        {
            return 0;
        }
        string trimmed = text.Trim();
        if (trimmed == "max")
        {
            return ulong.MaxValue;
        }
        return TryParseUint(trimmed, out ulong value) ? value : 0;
    }

    /// <summary>"key value" lines into a map (later duplicates win); lines without exactly two fields or a numeric value are skipped.</summary>
    internal static Dictionary<string, ulong> ParseKeyValues(string text)
    {
        var values = new Dictionary<string, ulong>(StringComparer.Ordinal);
        foreach (var line in Lines(text))
        {
            string[] fields = Fields(line);
            if (fields.Length == 2 && TryParseUint(fields[1], out ulong value))
            {
                values[fields[0]] = value;
            }
        }
        return values;
    }

    /// <summary>A "key value" file as a map; null when the file cannot be read.</summary>
    internal static Dictionary<string, ulong>? ReadKeyValues(string path)
    {
        string? text = TryReadText(path);
        return text is null ? null : ParseKeyValues(text);
    }

    /// <summary>The value of one key, 0 when absent (e.g. hugetlb.&lt;size&gt;.events "max").</summary>
    internal static ulong Get(this Dictionary<string, ulong>? values, string key) =>
        values is not null && values.TryGetValue(key, out ulong value) ? value : 0;
}
