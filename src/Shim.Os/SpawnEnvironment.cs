using System.Collections;

namespace Shim.Os;

/// <summary>Builds a child's environment from this process's (as .NET sees it, not libc's environ).</summary>
public static class SpawnEnvironment
{
    /// <summary>Every variable except those <paramref name="drop"/> names, then the "K=V" entries of <paramref name="set"/>, which win over inherited ones.</summary>
    public static IReadOnlyList<string> Inherit(Func<string, bool>? drop = null, params ReadOnlySpan<string> set)
    {
        var keys = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in set)
        {
            keys.Add(entry[..Math.Max(0, entry.IndexOf('=', StringComparison.Ordinal))]);
        }
        var list = new List<string>();
        foreach (DictionaryEntry entry in Environment.GetEnvironmentVariables())
        {
            var key = (string)entry.Key;
            if (keys.Contains(key) || (drop is not null && drop(key)))
            {
                continue;
            }
            list.Add($"{key}={entry.Value}");
        }
        list.AddRange(set);
        return list;
    }
}
