package dev.ema4j.backend;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Function;

/** The services attached to one backend ({@link Backend#service}), closed in reverse order of creation. */
public final class BackendServices {

    private final Map<Class<?>, Object> services = new LinkedHashMap<>();

    /** The service of {@code type}, created by {@code factory} for {@code backend} at the first request. */
    public <T> T get(Backend backend, Class<T> type, Function<? super Backend, ? extends T> factory) {
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(factory, "factory");
        Object service = services.get(type);
        if (service == null) {
            service = Objects.requireNonNull(factory.apply(backend), "the factory of " + type.getName() + " gave null");
            services.put(type, type.cast(service));
        }
        return type.cast(service);
    }

    /**
     * Closes every {@link AutoCloseable} service, even when one fails, and forgets them all; the first failure is
     * thrown with the others suppressed.
     */
    public void close() {
        List<Object> open = new ArrayList<>(services.values());
        services.clear();
        RuntimeException failure = null;
        for (int i = open.size() - 1; i >= 0; i--) {
            if (open.get(i) instanceof AutoCloseable c) {
                try {
                    c.close();
                } catch (Exception e) {
                    if (failure == null) {
                        failure = e instanceof RuntimeException r ? r : new IllegalStateException(e);
                    } else {
                        failure.addSuppressed(e);
                    }
                }
            }
        }
        if (failure != null) {
            throw failure;
        }
    }
}
