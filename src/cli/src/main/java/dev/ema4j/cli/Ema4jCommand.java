package dev.ema4j.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine;

/** The command-line program: {@code demo}, {@code reproduce}, {@code report}, {@code bench}. */
@Command(name = "ema4j", mixinStandardHelpOptions = true, versionProvider = Ema4jCommand.Version.class,
        description = "EMA of weights in deep learning: train, average, evaluate, reproduce the paper's findings.",
        subcommands = {DemoCommand.class, ReproduceCommand.class, ReportCommand.class, PosthocCommand.class,
                BenchCommand.class})
public final class Ema4jCommand {

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }

    /**
     * The program, printing bad input and failures as one line ({@code error: ...}, exit code 2) rather than a
     * stack trace.
     */
    public static CommandLine commandLine() {
        System.setProperty("java.awt.headless", "true");
        return new CommandLine(new Ema4jCommand()).setExecutionExceptionHandler((e, cmd, parsed) -> {
            cmd.getErr().println("error: " + e.getMessage());
            return 2;
        });
    }

    /** The version from the build. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[] {"ema4j " + dev.ema4j.study.Environment.version()};
        }
    }
}
