using System.Globalization;
using System.Text;

namespace Shim.E2E.Tests;

/// <summary>Reads /proc: processes by argv, mount points by path prefix.</summary>
internal static class ProcFs
{
    /// <summary>argv of a process, or null when it is gone or unreadable.</summary>
    public static string[]? Argv(int pid)
    {
        try
        {
            var raw = File.ReadAllBytes($"/proc/{pid}/cmdline");
            if (raw.Length == 0) { return null; }   // kernel threads and zombies
            return Encoding.UTF8.GetString(raw).TrimEnd('\0').Split('\0');
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    /// <summary>All live pids.</summary>
    public static IEnumerable<int> Pids()
    {
        foreach (var d in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(d), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)) { yield return pid; }
        }
    }

    /// <summary>
    /// Shim processes of one containerd: their argv carries "-address &lt;sock&gt;" (the Go flag form
    /// containerd passes to every shim). ctr uses "--address", so our own ctr calls never match.
    /// </summary>
    public static List<int> ShimPids(string socket, string? containerId = null)
    {
        var result = new List<int>();
        foreach (var pid in Pids())
        {
            if (pid == Environment.ProcessId) { continue; }
            var argv = Argv(pid);
            if (argv is null || !HasAddress(argv, socket)) { continue; }
            if (containerId is not null && !HasFlag(argv, "-id", containerId)) { continue; }
            result.Add(pid);
        }
        return result;
    }

    private static bool HasAddress(string[] argv, string socket) =>
        HasFlag(argv, "-address", socket);

    private static bool HasFlag(string[] argv, string flag, string value)
    {
        for (int i = 1; i < argv.Length; i++)
        {
            if (argv[i] == flag && i + 1 < argv.Length && argv[i + 1] == value) { return true; }
            if (argv[i] == flag + "=" + value) { return true; }
        }
        return false;
    }

    /// <summary>Threads of a process asleep in the kernel uninterruptibly (state D), e.g. held in write(2) by a frozen filesystem.</summary>
    public static int BlockedThreads(int pid)
    {
        int blocked = 0;
        foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
        {
            try
            {
                string stat = File.ReadAllText(Path.Combine(task, "stat"));
                blocked += stat[stat.LastIndexOf(')') + 2] == 'D' ? 1 : 0;
            }
            catch (IOException) { }   // the thread ended meanwhile
        }
        return blocked;
    }

    /// <summary>Mount points at or below a directory, deepest first (the order to unmount them in).</summary>
    public static List<string> MountsUnder(string dir)
    {
        var prefix = dir.TrimEnd('/') + "/";
        var result = new List<string>();
        foreach (var line in File.ReadLines("/proc/self/mountinfo"))
        {
            var fields = line.Split(' ');
            if (fields.Length < 5) { continue; }
            var mp = Unescape(fields[4]);
            if (mp == dir.TrimEnd('/') || mp.StartsWith(prefix, StringComparison.Ordinal)) { result.Add(mp); }
        }
        result.Sort((a, b) => b.Length.CompareTo(a.Length));
        return result;
    }

    // mountinfo escapes space, tab, newline and backslash as \ooo
    private static string Unescape(string s)
    {
        if (!s.Contains('\\', StringComparison.Ordinal)) { return s; }
        var sb = new StringBuilder(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] == '\\' && i + 3 < s.Length
                && s.Substring(i + 1, 3).All(c => c is >= '0' and <= '7'))
            {
                sb.Append((char)Convert.ToInt32(s.Substring(i + 1, 3), 8));
                i += 3;
            }
            else { sb.Append(s[i]); }
        }
        return sb.ToString();
    }
}
