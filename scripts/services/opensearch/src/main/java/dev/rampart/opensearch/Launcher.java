package dev.rampart.opensearch;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;

/**
 * Starts a single real OpenSearch node in this JVM, with the bundled modules
 * (netty4 transport/HTTP, analysis-common, mapper-extras, reindex, painless,
 * parent-join) passed as classpath plugins, the way OpenSearch's own MockNode does.
 *
 * Configuration through system properties (all optional):
 *   rampart.os.home  (default target/services/opensearch/home)
 *   rampart.os.host  (127.0.0.1), rampart.os.http.port (9200), rampart.os.transport.port (9300)
 *   rampart.os.cluster (rampart-test), rampart.os.node (rampart-node-0)
 */
public final class Launcher {

    private static final String[] PLUGINS = {
        "org.opensearch.transport.Netty4Plugin",
        "org.opensearch.analysis.common.CommonAnalysisPlugin",
        "org.opensearch.index.mapper.MapperExtrasPlugin",
        "org.opensearch.index.reindex.ReindexPlugin",
        "org.opensearch.painless.PainlessPlugin",
        "org.opensearch.join.ParentJoinPlugin",
    };

    /** Exposes the protected constructor that takes classpath plugins. */
    static final class EmbeddedNode extends Node {
        EmbeddedNode(Environment env, Collection<Class<? extends Plugin>> plugins) {
            super(env, plugins, true);
        }
    }

    @SuppressWarnings("unchecked")
    private static List<Class<? extends Plugin>> plugins() {
        List<Class<? extends Plugin>> out = new ArrayList<>();
        for (String name : PLUGINS) {
            try {
                out.add((Class<? extends Plugin>) Class.forName(name));
            } catch (ClassNotFoundException e) {
                System.err.println("[launcher] plugin not on classpath, skipped: " + name);
            }
        }
        return out;
    }

    public static void main(String[] args) throws Exception {
        Path home = Path.of(System.getProperty("rampart.os.home", "target/services/opensearch/home")).toAbsolutePath();
        Files.createDirectories(home.resolve("config"));
        Files.createDirectories(home.resolve("data"));
        Files.createDirectories(home.resolve("logs"));

        Settings settings = Settings.builder()
            .put("path.home", home.toString())
            .put("path.data", home.resolve("data").toString())
            .put("path.logs", home.resolve("logs").toString())
            .put("cluster.name", System.getProperty("rampart.os.cluster", "rampart-test"))
            .put("node.name", System.getProperty("rampart.os.node", "rampart-node-0"))
            .put("network.host", System.getProperty("rampart.os.host", "127.0.0.1"))
            .put("http.port", System.getProperty("rampart.os.http.port", "9200"))
            .put("transport.port", System.getProperty("rampart.os.transport.port", "9300"))
            .put("discovery.type", "single-node")
            // Test machines often have fairly full disks: never flip indices to read-only.
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .build();

        Environment env = InternalSettingsPreparer.prepareEnvironment(
            settings, Collections.emptyMap(), home.resolve("config"), () -> settings.get("node.name"));

        long t0 = System.nanoTime();
        Node node = new EmbeddedNode(env, plugins());
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(10, TimeUnit.SECONDS);
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                stopped.countDown();
            }
        }, "rampart-opensearch-shutdown"));
        node.start();
        System.out.printf("[launcher] OpenSearch node started in %d ms%n", (System.nanoTime() - t0) / 1_000_000);
        stopped.await();
    }
}
