using System.Globalization;

namespace Shim.E2E.Tests;

/// <summary>One process's resource figures, read from /proc.</summary>
internal readonly record struct ProcSample(int Fds, int Threads, long RssKiB, long PssKiB)
{
    public override string ToString() => $"fds {Fds}, threads {Threads}, RSS {RssKiB} KiB, PSS {PssKiB} KiB";
}

/// <summary>/proc readings for leak checks: fd and thread counts, memory, zombie children.</summary>
internal static class ProcStats
{
    /// <summary>Current figures of <paramref name="pid"/>; throws when the process is gone.</summary>
    public static ProcSample Sample(int pid)
    {
        int fds = Directory.GetFileSystemEntries($"/proc/{pid}/fd").Length;
        int threads = 0;
        long rss = 0, pss = 0;
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("Threads:", StringComparison.Ordinal)) { threads = int.Parse(line[8..].Trim(), CultureInfo.InvariantCulture); }
            else if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) { rss = KiB(line); }
        }
        foreach (var line in File.ReadLines($"/proc/{pid}/smaps_rollup"))
        {
            if (line.StartsWith("Pss:", StringComparison.Ordinal)) { pss = KiB(line); }
        }
        return new ProcSample(fds, threads, rss, pss);
    }

    /// <summary>Zombie processes whose parent is <paramref name="ppid"/>.</summary>
    public static List<int> ZombieChildren(int ppid)
    {
        var result = new List<int>();
        foreach (var pid in ProcFs.Pids())
        {
            if (Stat(pid) is { State: 'Z', PPid: var parent } && parent == ppid) { result.Add(pid); }
        }
        return result;
    }

    /// <summary>State letter and parent of a process from /proc/&lt;pid&gt;/stat, or null when it is gone.</summary>
    public static (char State, int PPid)? Stat(int pid)
    {
        try
        {
            var text = File.ReadAllText($"/proc/{pid}/stat");
            // the command name is in parentheses and may contain spaces: fields resume after the last ')'
            var rest = text[(text.LastIndexOf(')') + 2)..].Split(' ');
            return (rest[0][0], int.Parse(rest[1], CultureInfo.InvariantCulture));
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    private static long KiB(string line) =>
        long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
}
