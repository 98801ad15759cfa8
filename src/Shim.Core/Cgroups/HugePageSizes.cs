using System.Globalization;

namespace Shim.Core.Cgroups;

/// <summary>The host's huge page sizes as cgroup file names spell them ("2MB", "1GB").</summary>
internal static class HugePageSizes
{
    internal const string DefaultDirectory = "/sys/kernel/mm/hugepages";

    private static readonly Lazy<IReadOnlyList<string>> Host = new(() => ReadUncached(DefaultDirectory));

    /// <summary>Sizes from the hugepages-&lt;N&gt;kB entries of <paramref name="directory"/>, sorted by entry name; empty when it does not exist.</summary>
    internal static IReadOnlyList<string> Read(string directory) =>
        directory == DefaultDirectory ? Host.Value : ReadUncached(directory);

    /// <summary>"hugepages-2048kB" → "2MB", following the kernel's hugetlb cgroup naming (and containerd's cgroup2 helper); null for other names.</summary>
    internal static string? FromDirectoryName(string name)
    {
        const string Prefix = "hugepages-";
        const string Suffix = "kB";
        if (!name.StartsWith(Prefix, StringComparison.Ordinal) || !name.EndsWith(Suffix, StringComparison.Ordinal))
        {
            return null;
        }
        string digits = name[Prefix.Length..^Suffix.Length];
        if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out long kb))
        {
            return null;
        }
        return kb >= 1 << 20 ? string.Create(CultureInfo.InvariantCulture, $"{kb >> 20}GB")
            : kb >= 1 << 10 ? string.Create(CultureInfo.InvariantCulture, $"{kb >> 10}MB")
            : string.Create(CultureInfo.InvariantCulture, $"{kb}KB");
    }

    private static IReadOnlyList<string> ReadUncached(string directory)
    {
        string[] entries;
        try
        {
            entries = Directory.GetFileSystemEntries(directory);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return [];
        }
        var names = entries.Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal);
        return [.. names.Select(FromDirectoryName).OfType<string>()];
    }
}
